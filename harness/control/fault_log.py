"""The reader of a stack's fault log (`<state>/fault_log.jsonl`), written only by the stack's owner.

One JSON object per line: {"at", "op": "start"|"end", "id", "fault", "target", "params", "until"}. A fault is
active while its "start" line has no "end" line with the same id.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["active_faults"]


def active_faults(path: Path) -> list[dict[str, Any]]:
    """The "start" entries of the faults still active, in the order they started; none without a log.

    A line that is not a JSON object (a write cut short by a crash) is skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return []
    started: dict[str, dict[str, Any]] = {}
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if not isinstance(entry, dict):
            continue
        if entry.get("op") == "start":
            started[str(entry.get("id"))] = entry
        elif entry.get("op") == "end":
            started.pop(str(entry.get("id")), None)
    return list(started.values())
