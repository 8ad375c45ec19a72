"""The harness's shared data model: the database snapshot the checkers read (plain data, taken by the
observer after faults heal), the stack's link names and the time and payload conventions.

Times are epoch seconds (floats). Database times (``ts``, ``publishedAt``, the log lines'
``publishedAt``) are on PostgreSQL's clock: add ``clock_offset_s`` to put them on the history's
``wall`` clock. ``publishes`` and ``inserts`` are the service's ``metric.events_published`` and
``metric.events_inserted`` log lines: its own word, to be checked against the rows, never used instead
of them. None means no logs were collected (which is different from an empty tuple: logs collected,
nothing logged).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

TERMINAL_TYPE = "RunFinished"
# The stack's links (toxiproxy proxies): the clients' SSE link and each role's PostgreSQL link, or the
# one PostgreSQL link `pg` of a target doing every role in one process (a stack has one kind or the other).
LINKS = ("sse", "pg_api", "pg_outbox", "pg_queue", "pg")
ROLE_LINKS = ("pg_api", "pg_outbox", "pg_queue")
TERMINAL_STATES = frozenset({"succeeded", "failed", "cancelled"})


@dataclass(frozen=True)
class EventRow:
    seq: int
    type: str
    ts: float | None = None
    published_at: float | None = None
    payload_digest: str | None = None  # payload_digest() of the row's payload
    step: int | None = None  # a RunStep's payload.step: which scripted step this event is


def payload_digest(payload: Any) -> str:
    """sha256 of the payload as canonical JSON: the same for the database row and the frame's data."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class RunSnapshot:
    run_id: str
    state: str
    last_seq: int
    outbox_next_seq: int | None  # None: no run_outbox row
    events: tuple[EventRow, ...] = ()
    terminal_status: str | None = None  # the first RunFinished's payload.status, as stored

    def event(self, seq: int) -> EventRow | None:
        return next((e for e in self.events if e.seq == seq), None)

    @property
    def terminal_seq(self) -> int | None:
        """Seq of the first ``RunFinished``; for a run closed without one (the runbook's last
        resort) its ``lastSeq``; None while the run is not finished."""
        seqs = [e.seq for e in self.events if e.type == TERMINAL_TYPE]
        if seqs:
            return min(seqs)
        return self.last_seq if self.state in TERMINAL_STATES else None

    @property
    def delivery_end(self) -> int | None:
        """The last seq a client can ever receive: the ``RunFinished``'s, or for a run closed without
        one (the runbook's last resort, which also deletes its outbox row) the highest published seq,
        since what was not published then never will be. None while the run is not finished."""
        if any(e.type == TERMINAL_TYPE for e in self.events) or self.state not in TERMINAL_STATES:
            return self.terminal_seq
        return max((e.seq for e in self.events if e.published_at is not None), default=0)


@dataclass(frozen=True)
class PublishRecord:
    run_id: str
    seq: int
    time: float
    lag_ms: float | None = None
    type: str | None = None


@dataclass(frozen=True)
class InsertRecord:
    run_id: str
    seq: int
    time: float  # the line's own timestamp (the service's clock)
    type: str | None = None


@dataclass(frozen=True)
class GaugeReading:
    """One scrape of the service's ``outbox_backlog_avg`` gauge beside the runbook's value from the
    database, read just before and just after the scrape (None when it changed in between)."""

    source: str  # the /metrics URL
    wall: float  # harness wall clock of the scrape
    value: float | None  # None: the gauge was not exposed or the scrape failed
    db_value: float | None


@dataclass(frozen=True)
class Snapshot:
    runs: Mapping[str, RunSnapshot] = field(default_factory=dict)
    publishes: tuple[PublishRecord, ...] | None = None
    taken_at: float | None = None
    # harness wall clock minus PostgreSQL's clock_timestamp(), and half the round trip it was measured
    # over: DB times + offset are on the history's wall clock, give or take the uncertainty.
    clock_offset_s: float | None = None
    clock_uncertainty_s: float | None = None
    inserts: tuple[InsertRecord, ...] | None = None
    # Scrapes of the backlog gauge until it agreed with the database or four sample periods passed
    # (``backlog_sample_s``, the service's BACKLOG_SAMPLE_MS); None: not read.
    backlog_gauge: tuple[GaugeReading, ...] | None = None
    backlog_sample_s: float | None = None

    def to_wall(self, db_time: float) -> float:
        """A database time on the history's wall clock (unchanged when no offset was measured)."""
        return db_time + (self.clock_offset_s or 0.0)

    def to_dict(self) -> dict[str, Any]:
        return {
            "runs": {k: _run_to_dict(v) for k, v in self.runs.items()},
            "publishes": None if self.publishes is None else [vars(p) for p in self.publishes],
            "taken_at": self.taken_at,
            "clock_offset_s": self.clock_offset_s,
            "clock_uncertainty_s": self.clock_uncertainty_s,
            "inserts": None if self.inserts is None else [vars(i) for i in self.inserts],
            "backlog_gauge": None if self.backlog_gauge is None else [vars(g) for g in self.backlog_gauge],
            "backlog_sample_s": self.backlog_sample_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Snapshot:
        pubs, ins, gauge = data.get("publishes"), data.get("inserts"), data.get("backlog_gauge")
        return cls(
            runs={k: _run_from_dict(v) for k, v in (data.get("runs") or {}).items()},
            publishes=None if pubs is None else tuple(PublishRecord(**p) for p in pubs),
            taken_at=data.get("taken_at"),
            clock_offset_s=data.get("clock_offset_s"),
            clock_uncertainty_s=data.get("clock_uncertainty_s"),
            inserts=None if ins is None else tuple(InsertRecord(**i) for i in ins),
            backlog_gauge=None if gauge is None else tuple(GaugeReading(**g) for g in gauge),
            backlog_sample_s=data.get("backlog_sample_s"),
        )


def _run_to_dict(run: RunSnapshot) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "state": run.state,
        "last_seq": run.last_seq,
        "outbox_next_seq": run.outbox_next_seq,
        "events": [vars(e) for e in run.events],
        "terminal_status": run.terminal_status,
    }


def _run_from_dict(data: Mapping[str, Any]) -> RunSnapshot:
    events = tuple(EventRow(**e) for e in data.get("events", ()))
    return RunSnapshot(data["run_id"], data["state"], data["last_seq"], data.get("outbox_next_seq"), events,
                       data.get("terminal_status"))


def to_epoch(value: Any) -> float | None:
    """Epoch seconds from a float, an ISO-8601 string, a ``datetime`` or the logs' ``time`` format."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, datetime):
        return value.timestamp()
    if isinstance(value, str):
        text = value.strip().replace(" ", "T", 1)
        if text.endswith("Z"):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            return None
        if parsed.tzinfo is None:  # the service logs UTC; a naive value is UTC, not local time
            parsed = parsed.replace(tzinfo=timezone.utc)
        return parsed.timestamp()
    return None


__all__ = [
    "LINKS",
    "ROLE_LINKS",
    "TERMINAL_STATES",
    "TERMINAL_TYPE",
    "EventRow",
    "GaugeReading",
    "InsertRecord",
    "PublishRecord",
    "RunSnapshot",
    "Snapshot",
    "payload_digest",
    "to_epoch",
]
