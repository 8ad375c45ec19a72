"""Where a runbook command looks: `--dsn` / `--logs` when given, else the running stack's stack.json.

`harness up` writes `.harness/stack.json` (keys `dsn`, `logs_dir`, `toxiproxy_url`, `api_url`); the
commands read it, so on a laptop `harness diagnose RUN_ID` needs no options at all.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.stack.paths import state_dir

__all__ = ["resolve_dsn", "resolve_logs_dir", "stack_json"]


def stack_json() -> dict[str, Any] | None:
    """The running stack's endpoints, or None when no stack.json is readable."""
    path = state_dir() / "stack.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def resolve_dsn(dsn: str | None) -> str:
    if dsn:
        return dsn
    info = stack_json()
    if info and info.get("dsn"):
        return str(info["dsn"])
    raise ConfigError(f"no --dsn given and no stack is up ({state_dir() / 'stack.json'} is missing):"
                      " pass --dsn postgresql://... or start a stack with `harness up`")


def resolve_logs_dir(logs: Path | str | None) -> Path:
    if logs:
        return Path(logs)
    info = stack_json()
    if info and info.get("logs_dir"):
        return Path(info["logs_dir"])
    raise ConfigError(f"no --logs given and no stack is up ({state_dir() / 'stack.json'} is missing):"
                      " pass --logs DIR (the service's *.log files) or start a stack with `harness up`")
