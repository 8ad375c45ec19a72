"""Output and defaults shared by the runbook commands (`diagnose`, `lag`, `alerts`, ...)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import typer

from harness.runbook.context import resolve_dsn, resolve_logs_dir, stack_json
from harness.service_logs import RUNBOOK_LOGS
from harness.target.profile import LogSpec, load_profile

__all__ = ["emit_json", "finish", "log_spec", "logs_or_none", "resolve_dsn", "resolve_logs_dir"]


def log_spec(target: Path | None) -> LogSpec:
    """How the service's lines are read: its profile's [logs], or the runbook's own names."""
    return load_profile(target).logs if target is not None else RUNBOOK_LOGS


def emit_json(data: Any) -> None:
    print(json.dumps(data, indent=2, default=str))


def finish(problem: bool) -> None:
    """Exit 1 when the command found a problem (0 otherwise)."""
    if problem:
        raise typer.Exit(1)


def logs_or_none(logs: Path | None) -> Path | None:
    """The log folder when given or known from stack.json; None when neither (optional for the command)."""
    if logs is not None:
        return logs
    info = stack_json()
    return Path(info["logs_dir"]) if info and info.get("logs_dir") else None


