"""docker-compose.yml's structure against the local stack's, and its override for this machine
(docker/compose.local.yml); tests/integration/test_compose.py brings them up."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from harness.stack.service import links_of
from harness.target import reference_profile
from harness.target import reference_profile

REPO = Path(__file__).resolve().parents[2]
REFERENCE_LINKS = {"sse", *links_of(reference_profile()).values()}  # the compose runs the reference
SERVICE_ROLES = ("api", "outbox-worker", "queue-worker")


def _compose(name: str = "docker-compose.yml") -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((REPO / name).read_text())["services"]
    return services


def _proxies(name: str) -> dict[str, Any]:
    return {p["name"]: p for p in json.loads((REPO / "docker" / name).read_text())}


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


def _service_variables() -> set[str]:
    """Every environment variable the reference service reads (its config module names them all)."""
    source = (REPO / "reference_impl" / "config.py").read_text()
    return set(re.findall(r'"([A-Z][A-Z0-9_]{2,})"', source))


def test_every_component_of_the_topology_is_there() -> None:
    assert set(_compose()) == {"postgres", "toxiproxy", "migrate", "nginx", *SERVICE_ROLES}


def test_long_running_services_have_health_checks_and_loopback_ports() -> None:
    for name, svc in _compose().items():
        if name != "migrate":
            assert svc.get("healthcheck", {}).get("test"), f"{name} has no health check"
    published = _compose("docker-compose.override.yml")
    assert set(published) == {"postgres", "toxiproxy"}
    for name, svc in published.items():
        for port in svc["ports"]:
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_service_processes_use_the_variables_the_harness_sets() -> None:
    known = _service_variables()
    # what the reference profile gives every long-running role, bar what only the harness knows
    harness_sets = set(reference_profile().entry("api").env) - {"SSE_RETRY_MS", "API_HOST", "API_PORT", "ADMIN_TOKEN",  # type: ignore[union-attr]
                                                                 "FAILPOINTS", "LOGS_DIR", "PYTHONUNBUFFERED",
                                                                 "SERVICE_NAME"}
    for role in SERVICE_ROLES:
        svc = _compose()[role]
        env = svc["environment"]
        assert svc["command"] == [role]
        assert set(env) <= known, f"{role} sets variables the service does not read: {set(env) - known}"
        assert harness_sets <= set(env), f"{role} lacks {harness_sets - set(env)}"


def test_each_role_reaches_postgres_through_its_own_toxiproxy_link() -> None:
    proxies = _proxies("toxiproxy.json")
    assert set(proxies) == REFERENCE_LINKS
    links = {"api": "pg_api", "outbox-worker": "pg_outbox", "queue-worker": "pg_queue"}
    for role, link in links.items():
        port = proxies[link]["listen"].rsplit(":", 1)[1]
        assert f"@toxiproxy:{port}/" in _compose()[role]["environment"]["DATABASE_URL"]
        assert proxies[link]["upstream"] == "postgres:5432"
    assert proxies["sse"]["upstream"] == "nginx:80"


def test_nginx_is_configured_for_sse() -> None:
    conf = (REPO / "docker" / "nginx.conf").read_text()
    for directive in ("proxy_buffering off;", "proxy_http_version 1.1;", "proxy_read_timeout 3600s;"):
        assert directive in conf
    # the local variant differs only in where it listens and where the API is
    local = (REPO / "docker" / "nginx.local.conf").read_text()
    assert local[local.index("location /"):] == conf[conf.index("location /"):]


LOCAL_IMAGES = {"postgres": "harness-postgres:15", "toxiproxy": "harness-toxiproxy:2.12.0",
                "nginx": "harness-nginx:1.22"}  # scripts/docker_setup.sh builds them


def test_the_local_override_puts_every_service_on_the_host_network_with_local_images() -> None:
    local = _compose("docker/compose.local.yml")
    assert set(local) == set(_compose())
    for name, svc in local.items():
        assert svc["network_mode"] == "host" and "ports" not in svc, name
        assert svc.get("image", _compose()[name]["image"]) == LOCAL_IMAGES.get(name, "outbox-sse-reference:local")
    script = (REPO / "scripts" / "docker_setup.sh").read_text()
    assert all(image in script for image in LOCAL_IMAGES.values())


def test_the_local_override_listens_on_distinct_loopback_ports_below_the_ephemeral_range() -> None:
    local, proxies = _compose("docker/compose.local.yml"), _proxies("toxiproxy.local.json")
    nginx = (REPO / "docker" / "nginx.local.conf").read_text()
    api_port = int(local["api"]["environment"]["API_PORT"])
    nginx_listen = re.search(r"listen ([\d.:]+);", nginx)
    assert nginx_listen and nginx_listen.group(1).startswith("127.0.0.1:")
    assert f"server 127.0.0.1:{api_port};" in nginx
    assert set(proxies) == REFERENCE_LINKS and proxies["sse"]["upstream"] == nginx_listen.group(1)
    pg_port = int(local["postgres"]["environment"]["PGPORT"])
    for link, proxy in proxies.items():
        assert proxy["listen"].startswith("127.0.0.1:") and proxy["upstream"].startswith("127.0.0.1:"), link
    toxiproxy_argv = local["toxiproxy"]["command"]
    assert toxiproxy_argv[toxiproxy_argv.index("-host") + 1] == "127.0.0.1"
    links = {"api": "pg_api", "outbox-worker": "pg_outbox", "queue-worker": "pg_queue"}
    for role, link in links.items():
        env = local[role]["environment"]
        assert f"@127.0.0.1:{_port(proxies[link]['listen'])}/" in env["DATABASE_URL"]
        assert proxies[link]["upstream"] == f"127.0.0.1:{pg_port}"
        assert env.get("API_HOST", env.get("ADMIN_HOST")) == "127.0.0.1"
    assert f"@127.0.0.1:{pg_port}/" in local["migrate"]["environment"]["DATABASE_URL"]
    role_ports = {role: int(local[role]["environment"].get("API_PORT") or local[role]["environment"]["ADMIN_PORT"])
                  for role in SERVICE_ROLES}
    for role, port in role_ports.items():
        assert f"//127.0.0.1:{port}/healthz" in " ".join(local[role]["healthcheck"]["test"]), role
    ports = [pg_port, int(toxiproxy_argv[toxiproxy_argv.index("-port") + 1]), _port(nginx_listen.group(1)),
             *(_port(p["listen"]) for p in proxies.values()), *role_ports.values()]
    assert len(set(ports)) == len(ports) and all(1024 < port < 32768 for port in ports), ports
