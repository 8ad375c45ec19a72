"""The domain vocabulary: run states, event types, and an appended event as plain data."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

__all__ = ["OUTCOMES", "TERMINAL_STATES", "TERMINAL_TYPE", "Event", "iso_utc"]

TERMINAL_TYPE = "RunFinished"
OUTCOMES = ("succeeded", "failed", "cancelled")
TERMINAL_STATES = frozenset(OUTCOMES)


def iso_utc(moment: datetime) -> str:
    """ISO 8601 in UTC with microseconds and a `Z`, e.g. `2025-01-02T03:04:05.123456Z`."""
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Event:
    run_id: str
    seq: int
    type: str
    payload: Any
    ts: datetime

    @property
    def is_terminal(self) -> bool:
        return self.type == TERMINAL_TYPE

    def to_data(self) -> dict[str, Any]:
        """The SSE frame's data object and the bus's `event`: runId, seq, type, ts, payload."""
        return {"runId": self.run_id, "seq": self.seq, "type": self.type, "ts": iso_utc(self.ts),
                "payload": self.payload}
