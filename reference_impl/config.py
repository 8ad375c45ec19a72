"""Service configuration: one frozen value object read from the environment.

Every interval is configurable so chaos tests run in seconds; defaults are the runbook's values
(poll 200 ms, transaction timeout 5000 ms, heartbeat 15 s). See docs/CONTRACTS.md for the table.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["Config", "ConfigError", "load_config"]


class ConfigError(ValueError):
    """A configuration value is missing or invalid; the message names the variable."""


@dataclass(frozen=True)
class Config:
    database_url: str
    service_name: str
    api_host: str = "127.0.0.1"
    api_port: int = 3000
    admin_host: str = "127.0.0.1"
    admin_port: int | None = None
    admin_token: str | None = None
    failpoints: str = ""
    outbox_poll_ms: int = 200
    outbox_batch_size: int = 100
    outbox_tx_timeout_ms: int = 5000
    backlog_sample_ms: int = 5000
    queue_poll_ms: int = 200
    queue_concurrency: int = 8
    job_lease_ms: int = 30000
    heartbeat_ms: int = 15000
    sse_retry_ms: int | None = None
    stream_max_backlog: int = 10000
    db_pool_max: int = 10


# (variable, field, minimum, maximum): bounds keep a typo such as OUTBOX_POLL_MS=0 from spinning a CPU.
_INTS: tuple[tuple[str, str, int, int], ...] = (
    ("API_PORT", "api_port", 0, 65535),
    ("OUTBOX_POLL_MS", "outbox_poll_ms", 1, 3_600_000),
    ("OUTBOX_BATCH_SIZE", "outbox_batch_size", 1, 10_000),
    ("OUTBOX_TX_TIMEOUT_MS", "outbox_tx_timeout_ms", 10, 3_600_000),
    ("BACKLOG_SAMPLE_MS", "backlog_sample_ms", 100, 3_600_000),
    ("QUEUE_POLL_MS", "queue_poll_ms", 1, 3_600_000),
    ("QUEUE_CONCURRENCY", "queue_concurrency", 1, 1000),
    ("JOB_LEASE_MS", "job_lease_ms", 100, 86_400_000),
    ("HEARTBEAT_MS", "heartbeat_ms", 10, 3_600_000),
    ("STREAM_MAX_BACKLOG", "stream_max_backlog", 1, 10_000_000),
    ("DB_POOL_MAX", "db_pool_max", 1, 1000),
)


def parse_int(env: Mapping[str, str], name: str, low: int, high: int) -> int | None:
    """Parse an optional integer variable; empty or unset means "use the default"."""
    raw = env.get(name, "").strip()
    if raw == "":
        return None
    try:
        value = int(raw, 10)
    except ValueError:
        raise ConfigError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise ConfigError(f"{name}={value} is out of range [{low}, {high}]")
    return value


def _host(env: Mapping[str, str], name: str, default: str) -> str:
    value = env.get(name, "").strip() or default
    if any(c.isspace() for c in value):
        raise ConfigError(f"{name}={value!r} is not a host name or address")
    return value


def _optional(env: Mapping[str, str], name: str) -> str | None:
    return env.get(name, "").strip() or None


def load_config(env: Mapping[str, str], role: str) -> Config:
    """Build the Config from an environment mapping, raising ConfigError on the first bad value."""
    database_url = env.get("DATABASE_URL", "").strip()
    if not database_url:
        raise ConfigError("DATABASE_URL is required (a libpq DSN, e.g. postgresql://user@127.0.0.1:5432/db)")
    values: dict[str, object] = {
        "database_url": database_url,
        "service_name": env.get("SERVICE_NAME", "").strip() or role,
        "api_host": _host(env, "API_HOST", "127.0.0.1"),
        "admin_host": _host(env, "ADMIN_HOST", "127.0.0.1"),
        "admin_port": parse_int(env, "ADMIN_PORT", 0, 65535),
        "admin_token": _optional(env, "ADMIN_TOKEN"),
        "failpoints": env.get("FAILPOINTS", "").strip(),
        "sse_retry_ms": parse_int(env, "SSE_RETRY_MS", 0, 3_600_000),
    }
    for name, field, low, high in _INTS:
        parsed = parse_int(env, name, low, high)
        if parsed is not None:
            values[field] = parsed
    return Config(**values)  # type: ignore[arg-type]  # fields named at run time (_INTS), each parsed to its type


def is_loopback(host: str | None) -> bool:
    """True for 127.0.0.0/8, ::1 and "localhost": the admin endpoints answer only these clients."""
    if host is None:
        return False
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
