"""StackConfig overrides, environment, StackInfo's JSON, ports."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.stack import Intervals, NginxMode, ProcessInfo, ServiceConfig, StackConfig, StackInfo
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
    assert config.service.argv("api") == ("node", "dist/main.js", "--flag", "api")
    assert config.service.source_dir == tmp_path and config.service.intervals.heartbeat_ms == 1000
    with pytest.raises(ConfigError, match="not a directory"):
        StackConfig.from_env({"HARNESS_SERVICE_DIR": str(tmp_path / "missing")})


def test_default_command_is_the_reference_service() -> None:
    argv = ServiceConfig().argv("outbox-worker")
    assert argv[1:] == ("-m", "reference_impl", "outbox-worker")


def test_intervals_env() -> None:
    env = Intervals.fast().env()
    assert env["HEARTBEAT_MS"] == "1000" and env["OUTBOX_POLL_MS"] == "200" and "SSE_RETRY_MS" not in env
    assert Intervals(sse_retry_ms=500).env()["SSE_RETRY_MS"] == "500"


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
