"""The fault log of a stack owned by `harness up`: `<state>/fault_log.jsonl`, written only by the owner.

One JSON object per line, appended as each change happens:
`{"at": ISO-8601 UTC, "op": "start"|"end", "id": "f1", "fault": KIND, "target": ..., "params": {...},
"until": ISO time when `--for` heals it, or null}`. An instant change (a restart, terminated sessions)
is a "start" line followed at once by its "end" line. A fault is active while its id has a "start" line
and no "end" line.
"""

from __future__ import annotations

import json
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

__all__ = ["FaultLog", "active_faults", "iso", "log_lines"]


def iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, timezone.utc).isoformat(timespec="milliseconds")


class FaultLog:
    """The owner's writer; `reset()` starts the log of a new stack."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def reset(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text("")

    def append(self, at: float, op: str, fault_id: str, fault: str, target: str, params: dict[str, Any],
               until: float | None) -> None:
        line = {"at": iso(at), "op": op, "id": fault_id, "fault": fault, "target": target, "params": params,
                "until": None if until is None else iso(until)}
        with self._lock, open(self.path, "a") as out:
            out.write(json.dumps(line, default=str) + "\n")


def log_lines(path: Path) -> list[dict[str, Any]]:
    """Every line of the log, oldest first; none when it is missing. A line cut short (the owner killed
    mid-write) is skipped."""
    try:
        text = path.read_text()
    except OSError:
        return []
    lines = []
    for raw in text.splitlines():
        try:
            lines.append(json.loads(raw))
        except ValueError:
            continue
    return lines


def active_faults(path: Path) -> list[dict[str, Any]]:
    """The "start" lines of the faults still active, oldest first; none when the log is missing."""
    started: dict[str, dict[str, Any]] = {}
    for line in log_lines(path):
        if line.get("op") == "start":
            started[line["id"]] = line
        elif line.get("op") == "end":
            started.pop(str(line.get("id")), None)
    return list(started.values())
