"""StackConfig overrides, environment, StackInfo's JSON, ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.stack import Intervals, NginxMode, ProcessInfo, ServiceConfig, StackConfig, StackInfo
from harness.stack.service import Service
from harness.target.profile import parse_profile
from harness.stack.ports import free_ports


def test_overrides_route_to_their_level() -> None:
    config = StackConfig().with_overrides(nginx="buffered", api_replicas=2, heartbeat_ms=500, failpoints="a=crash")
    assert config.nginx is NginxMode.BUFFERED
    assert config.service is not None and config.service.api_replicas == 2
    assert config.service.intervals.heartbeat_ms == 500 and config.service.failpoints == "a=crash"
    assert config.service.intervals.outbox_poll_ms == Intervals().outbox_poll_ms


def test_unknown_or_invalid_settings_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown stack setting 'hearbeat_ms'"):
        StackConfig().with_overrides(hearbeat_ms=1)
    with pytest.raises(ConfigError, match="nginx must be one of"):
        StackConfig().with_overrides(nginx="sometimes")
    with pytest.raises(ConfigError, match="at least one API replica"):
        ServiceConfig(api_replicas=0)
    with pytest.raises(ConfigError, match="with no service"):
        StackConfig(service=None).with_overrides(heartbeat_ms=1)


def test_from_env(tmp_path: Path) -> None:
    env = {"HARNESS_POSTGRES_DSN": "postgresql://x@db/y", "TOXIPROXY_URL": "http://tp:8474",
           "HARNESS_SERVICE_COMMAND": "node dist/main.js --flag", "HARNESS_SERVICE_DIR": str(tmp_path)}
    config = StackConfig.from_env(env, heartbeat_ms=1000)
    assert config.postgres_dsn == "postgresql://x@db/y" and config.toxiproxy_url == "http://tp:8474"
    assert config.service is not None
    assert _launch(config.service, "api")[0] == ("node", "dist/main.js", "--flag", "api")
    assert config.service.source_dir == tmp_path and config.service.intervals.heartbeat_ms == 1000
    with pytest.raises(ConfigError, match="not a directory"):
        StackConfig.from_env({"HARNESS_SERVICE_DIR": str(tmp_path / "missing")})
    # `harness run --nginx on` reaches the session's stacks as HARNESS_NGINX; a test's own choice wins
    assert StackConfig.from_env({"HARNESS_NGINX": "on"}).nginx is NginxMode.ON
    assert StackConfig.from_env({"HARNESS_NGINX": "on"}, nginx="buffered").nginx is NginxMode.BUFFERED
    assert StackConfig.from_env({}).nginx is NginxMode.OFF


def _launch(config: ServiceConfig, role: str, port: int | None = 4100) -> tuple[tuple[str, ...], dict[str, str]]:
    dsns = {r: f"postgresql://{r}" for r in ("api", "outbox-worker", "queue-worker")}
    service = Service(config, dsns, Path("/tmp/logs"), admin_token="tok")
    return service.launch(role, f"{role}-0", role, port)


def test_the_default_target_is_the_reference_service_with_its_placeholders_filled() -> None:
    argv, env = _launch(ServiceConfig(intervals=Intervals.fast()), "outbox-worker")
    assert argv[1:] == ("-m", "reference_impl", "outbox-worker")
    assert env["DATABASE_URL"] == "postgresql://outbox-worker" and env["ADMIN_PORT"] == "4100"
    assert env["HEARTBEAT_MS"] == "1000" and env["OUTBOX_POLL_MS"] == "200" and env["SERVICE_NAME"] == "outbox-worker-0"
    assert "SSE_RETRY_MS" not in env  # no retry set: left out, the service's own default applies
    _, env = _launch(ServiceConfig(intervals=Intervals(sse_retry_ms=500)), "api")
    assert env["SSE_RETRY_MS"] == "500" and env["API_PORT"] == "4100"


def test_another_targets_processes_come_from_its_profile() -> None:
    profile = parse_profile({
        "target": {"name": "node", "capabilities": ["separate_roles"]},
        "process": [{"role": "api", "command": ["node", "main.js", "api"],
                     "env": {"PORT": "{port}", "DATABASE_URL": "{dsn}", "HEARTBEAT_INTERVAL_S": "{heartbeat_s}"}},
                    {"role": "outbox-worker", "command": ["node", "main.js", "outbox"], "env": {"PG": "{dsn}"}}]})
    config = ServiceConfig(profile=profile, intervals=Intervals.fast(), role_env={"api": {"EXTRA": "1"}})
    argv, env = _launch(config, "api")
    assert argv == ("node", "main.js", "api") and env["PORT"] == "4100" and env["HEARTBEAT_INTERVAL_S"] == "1"
    assert env["EXTRA"] == "1" and "HEARTBEAT_MS" not in env  # nothing of the reference's naming
    assert config.count("queue-worker") == 0 and config.count("outbox-worker") == 1
    assert not profile.entry("outbox-worker").listens  # type: ignore[union-attr]
    service = Service(config, {"api": "a", "outbox-worker": "o"}, Path("/tmp/logs"), admin_token="t")
    assert [(p.name, p.port is None, p.health) for p in service.processes] == [
        ("api-0", False, "/healthz"), ("outbox-worker-0", True, None)]


def test_an_image_process_gets_its_args_and_the_profiles_environment_only() -> None:
    profile = parse_profile({"target": {"name": "img"}, "process": [
        {"role": "api", "image": "team/api:1", "args": ["api", "--port={port}"], "env": {"DATABASE_URL": "{dsn}"}}]})
    argv, env = _launch(ServiceConfig(profile=profile, extra_env={"EXTRA": "1"}), "api")
    assert argv == ("api", "--port=4100") and env == {"DATABASE_URL": "postgresql://api", "EXTRA": "1"}
    with pytest.raises(ConfigError, match="the target 'img' runs images"):
        ServiceConfig(profile=profile, command=("node", "main.js"))


def test_stack_info_json_roundtrip() -> None:
    info = StackInfo(api_url="http://a", api_direct_url="http://b", dsn="postgresql://c", toxiproxy_url="http://d",
                     logs_dir="/tmp/logs", admin_token="t", api_direct_urls=("http://b",),
                     processes=(ProcessInfo("api-0", "api", 1, "http://b", "/tmp/logs/api-0.log"),), owner_pid=7)
    again = StackInfo.from_json(info.to_json())
    assert again == info
    assert {"api_url", "api_direct_url", "dsn", "toxiproxy_url", "logs_dir"} <= set(info.to_dict())


def test_free_ports_are_distinct() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
