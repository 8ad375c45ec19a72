"""The whole stack's settings as one frozen value, built from defaults, environment and overrides."""

from __future__ import annotations

import dataclasses
import os
import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Mapping

from harness.errors import ConfigError
from harness.stack.nginx import NginxMode
from harness.stack.postgres import PostgresSettings
from harness.stack.service import Intervals, ServiceConfig
from harness.target.profile import load_profile, reference_profile

__all__ = ["INFRAS", "Infra", "StackConfig", "service_config_from_env"]

Infra = Literal["local", "docker"]
INFRAS: tuple[Infra, ...] = ("local", "docker")  # local processes, or containers (harness/stack/containers.py)


@dataclass(frozen=True)
class StackConfig:
    postgres_dsn: str | None = None  # an existing server; None: embedded
    toxiproxy_url: str | None = None  # an existing server; None: start one
    nginx: NginxMode = NginxMode.OFF
    service: ServiceConfig | None = field(default_factory=ServiceConfig)  # None: no service processes
    postgres: PostgresSettings = field(default_factory=PostgresSettings)
    logs_dir: Path | None = None  # None: a new temporary directory, kept after the stack stops
    proxy_prefix: str = ""  # of our proxy names, after "harness_" on an existing toxiproxy (LocalStack.proxy_name)
    infra: Infra = "local"  # how our own PostgreSQL and toxiproxy run (an external one given above is used as is)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, **overrides: Any) -> StackConfig:
        """Defaults, then HARNESS_POSTGRES_DSN / TOXIPROXY_URL / HARNESS_INFRA / HARNESS_NGINX /
        HARNESS_SERVICE_*, then overrides."""
        env = os.environ if env is None else env
        base = cls(postgres_dsn=env.get("HARNESS_POSTGRES_DSN") or None,
                   toxiproxy_url=env.get("TOXIPROXY_URL") or None,
                   service=service_config_from_env(env))
        chosen = {key: env[var] for key, var in (("infra", "HARNESS_INFRA"), ("nginx", "HARNESS_NGINX")) if env.get(var)}
        return base.with_overrides(**{**chosen, **overrides})

    def with_overrides(self, **overrides: Any) -> StackConfig:
        """Route each keyword to the level that owns it: stack, service or intervals.

        `with_overrides(nginx="buffered", api_replicas=2, heartbeat_ms=500)` reads the way tests
        think about a stack, without them building the nested values by hand.
        """
        stack_kw, service_kw, interval_kw = _split(overrides)
        if "nginx" in stack_kw:
            stack_kw["nginx"] = _nginx_mode(stack_kw["nginx"])
        if "infra" in stack_kw:
            stack_kw["infra"] = _infra(stack_kw["infra"])
        config = dataclasses.replace(self, **stack_kw)
        if (service_kw or interval_kw) and config.service is None:
            raise ConfigError(f"service settings {sorted(service_kw | interval_kw)} given with no service")
        if config.service is not None and (service_kw or interval_kw):
            intervals = dataclasses.replace(service_kw.pop("intervals", config.service.intervals), **interval_kw)
            service = dataclasses.replace(config.service, intervals=intervals, **service_kw)
            config = dataclasses.replace(config, service=service)
        return config


_FIELDS = {
    "stack": {f.name for f in dataclasses.fields(StackConfig)},
    "service": {f.name for f in dataclasses.fields(ServiceConfig)},
    "intervals": {f.name for f in dataclasses.fields(Intervals)},
}


def _split(overrides: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    parts: dict[str, dict[str, Any]] = {"stack": {}, "service": {}, "intervals": {}}
    for key, value in overrides.items():
        level = next((lvl for lvl, names in _FIELDS.items() if key in names), None)
        if level is None:
            known = sorted(set().union(*_FIELDS.values()))
            raise ConfigError(f"unknown stack setting {key!r}; known settings: {', '.join(known)}")
        parts[level][key] = value
    return parts["stack"], parts["service"], parts["intervals"]


def _nginx_mode(value: object) -> NginxMode:
    try:
        return NginxMode(value)
    except ValueError as exc:
        raise ConfigError(f"nginx must be one of {[m.value for m in NginxMode]}, got {value!r}") from exc


def _infra(value: object) -> Infra:
    if value not in INFRAS:
        raise ConfigError(f"infra must be one of {list(INFRAS)}, got {value!r}")
    return value


def service_config_from_env(env: Mapping[str, str]) -> ServiceConfig:
    """HARNESS_TARGET (a target profile, docs/TARGETS.md; default the reference service's) picks the
    implementation under test; HARNESS_SERVICE_COMMAND (shell words) runs another command with the
    reference's environment, HARNESS_SERVICE_DIR a patched copy of a Python implementation."""
    command = tuple(shlex.split(env.get("HARNESS_SERVICE_COMMAND", "")))
    source = env.get("HARNESS_SERVICE_DIR")
    if source and not Path(source).is_dir():
        raise ConfigError(f"HARNESS_SERVICE_DIR={source!r} is not a directory")
    target = env.get("HARNESS_TARGET")
    return ServiceConfig(command=command, source_dir=Path(source).resolve() if source else None,
                         profile=load_profile(target) if target else reference_profile())
