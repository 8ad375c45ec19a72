"""docker-compose.yml cannot run here (no Docker engine): check its structure against the local stack's."""
from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

from harness.model import LINKS
from harness.target import reference_profile

REPO = Path(__file__).resolve().parents[2]
SERVICE_ROLES = ("api", "outbox-worker", "queue-worker")


def _compose() -> dict[str, Any]:
    services: dict[str, Any] = yaml.safe_load((REPO / "docker-compose.yml").read_text())["services"]
    return services


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
        for port in svc.get("ports", []):
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
    proxies = {p["name"]: p for p in json.loads((REPO / "docker" / "toxiproxy.json").read_text())}
    assert set(proxies) == set(LINKS)
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
