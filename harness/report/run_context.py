"""What a run's verdict depends on besides the scenarios, for summary.json: the harness's version and
commit, the configuration it ran with (target, infrastructure, suites, the session stack's settings) and
the machine. Secrets stay out: a DSN is written without its password."""
from __future__ import annotations

import dataclasses
import os
import platform
import shlex
import socket
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from harness.reproduction import portable, project_commit
from harness.runbook._db import redact

if TYPE_CHECKING:
    from harness.stack import StackConfig

__all__ = ["configuration", "harness_info", "machine", "redacted_args", "stack_settings"]

_SECRET_OPTIONS = ("--postgres-dsn", "--dsn")  # pytest's spelling, and the harness command's


def harness_info() -> dict[str, Any]:
    try:
        installed = version("outbox-sse-harness")
    except PackageNotFoundError:
        installed = None
    commit = project_commit() or {}
    return {"version": installed, "commit": commit.get("commit"), "dirty": commit.get("dirty")}


def machine() -> dict[str, Any]:
    return {"hostname": socket.gethostname(), "cpus": os.cpu_count(), "python": platform.python_version(),
            "platform": platform.platform()}


def configuration(suites: list[str], pytest_args: tuple[str, ...], child: dict[str, Any]) -> dict[str, Any]:
    """`child`: what the pytest child wrote of its resolved target, infrastructure and stack (its
    configuration.json; empty when it never got that far)."""
    return {"target": child.get("target"), "infra": child.get("infra"), "suites": suites,
            "pytest_args": redacted_args(pytest_args), "stack": child.get("stack", {})}


def redacted_args(args: tuple[str, ...]) -> list[str]:
    """pytest's arguments with each DSN's password left out."""
    shown = list(args)
    for i, arg in enumerate(shown):
        option, equals, value = arg.partition("=")
        if equals and option in _SECRET_OPTIONS:
            shown[i] = f"{option}={redact(value)}"
        elif i and shown[i - 1] in _SECRET_OPTIONS:
            shown[i] = redact(arg)
    return shown


def stack_settings(config: StackConfig) -> dict[str, Any]:
    """The session stack's settings as plain data: where its parts run, the service's replicas and intervals."""
    service = config.service
    parts = {"postgres": "external" if config.postgres_dsn else config.infra,
             "toxiproxy": "external" if config.toxiproxy_url else config.infra, "nginx": config.nginx.value}
    if service is None:
        return parts
    return {**parts, "api_replicas": service.api_replicas, "outbox_workers": service.outbox_workers,
            "queue_workers": service.queue_workers, "intervals": dataclasses.asdict(service.intervals),
            "service_dir": portable(str(service.source_dir)) if service.source_dir else None,
            "service_command": shlex.join(service.command) or None, "failpoints": service.failpoints or None}
