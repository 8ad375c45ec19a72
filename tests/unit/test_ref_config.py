from __future__ import annotations

import pytest

from reference_impl.config import ConfigError, is_loopback, load_config

DSN = {"DATABASE_URL": "postgresql://u@127.0.0.1:5432/db"}


def test_defaults_are_the_runbooks_values() -> None:
    config = load_config(DSN, "outbox-worker")
    assert config.outbox_poll_ms == 200
    assert config.outbox_tx_timeout_ms == 5000
    assert config.heartbeat_ms == 15000
    assert config.api_port == 3000
    assert config.admin_port is None and config.admin_token is None and config.sse_retry_ms is None
    assert config.service_name == "outbox-worker"


def test_values_are_read() -> None:
    env = {**DSN, "OUTBOX_POLL_MS": "50", "ADMIN_PORT": "9001", "SSE_RETRY_MS": "500",
           "SERVICE_NAME": "outbox-2", "ADMIN_TOKEN": "t", "STREAM_MAX_BACKLOG": "10"}
    config = load_config(env, "outbox-worker")
    assert (config.outbox_poll_ms, config.admin_port, config.sse_retry_ms) == (50, 9001, 500)
    assert (config.service_name, config.admin_token, config.stream_max_backlog) == ("outbox-2", "t", 10)


def test_empty_value_means_default() -> None:
    assert load_config({**DSN, "HEARTBEAT_MS": ""}, "api").heartbeat_ms == 15000


def test_database_url_is_required() -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        load_config({}, "api")


@pytest.mark.parametrize("name,value", [
    ("OUTBOX_POLL_MS", "abc"), ("OUTBOX_POLL_MS", "0"), ("API_PORT", "70000"), ("HEARTBEAT_MS", "-1"),
    ("DB_POOL_MAX", "1.5"), ("ADMIN_PORT", "x"), ("API_HOST", "a b"),
])
def test_bad_values_name_the_variable(name: str, value: str) -> None:
    with pytest.raises(ConfigError, match=name):
        load_config({**DSN, name: value}, "api")


@pytest.mark.parametrize("host,expected", [
    ("127.0.0.1", True), ("127.1.2.3", True), ("::1", True), ("localhost", True),
    ("10.0.0.1", False), ("example.com", False), (None, False),
])
def test_loopback(host: str | None, expected: bool) -> None:
    assert is_loopback(host) is expected
