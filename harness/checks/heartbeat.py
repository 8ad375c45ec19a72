"""Invariant 9: an idle stream is never silent longer than the heartbeat interval plus a tolerance.

Per answered (200) connection, the silences are the gaps between its opening, every frame and
heartbeat comment, and its close (monotonic clock). A silence longer than option ``heartbeat_interval_s``
(default 15) + ``heartbeat_tolerance_s`` (default 2) fails, unless it overlaps a fault window on the
stream's own path (``fault_scope.faults_on(..., "stream")``: the sse link, nginx, the API; option
``heartbeat_exclude_faults``, default True: a partitioned link is silent by design, a paused queue or
outbox worker is no reason for a stream to fall silent). When no
connection stayed open for a full interval the heartbeat was never needed: ``unknown``.
"""

from __future__ import annotations

from typing import Any

from harness.checks._deliveries import Conn, MAX_LISTED, connections, fault_windows, overlaps_fault
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.checks.fault_scope import faults_on
from harness.model import Snapshot
from harness.history import FaultWindow

NAME = "heartbeat"


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    interval = opts.heartbeat_interval_s
    limit = interval + opts.heartbeat_tolerance_s
    faults = faults_on(fault_windows(history), "stream") if opts.heartbeat_exclude_faults else []
    conns = [c for c in connections(history) if c.status == 200]
    silences = [s for c in conns for s in silences_of(c)]
    too_long = [s for s in silences if s["silence_s"] > limit and not overlaps_fault(s["from"], s["to"], faults)]
    evidence: dict[str, Any] = {"interval_s": interval, "limit_s": limit,
                                "heartbeats": sum(len(c.heartbeats) for c in conns)}
    if too_long:
        too_long.sort(key=lambda s: -s["silence_s"])
        return failed(counterexample=too_long[0], silences=too_long[:MAX_LISTED], count=len(too_long), **evidence)
    longest = max((s["silence_s"] for s in silences), default=0.0)
    if not _exercised(conns, interval, faults):
        return unknown("no connection stayed open for a full heartbeat interval", longest_silence_s=longest,
                       **evidence)
    return passed(longest_silence_s=longest, **evidence)


def silences_of(conn: Conn) -> list[dict[str, Any]]:
    """Gaps between consecutive signs of life on one connection, in monotonic seconds."""
    assert conn.opened is not None
    marks = sorted([f.mono for f in conn.frames] + [h.mono for h in conn.heartbeats])
    times = [conn.opened.mono, *marks] + ([conn.closed.mono] if conn.closed else [])
    return [{"conn": conn.conn, "consumer": conn.consumer, "run_id": conn.run_id, "from": a, "to": b,
             "silence_s": round(b - a, 6), "closed": conn.closed.reason if conn.closed and b == times[-1] else None}
            for a, b in zip(times, times[1:])]


def _exercised(conns: list[Conn], interval: float, faults: list[FaultWindow]) -> bool:
    """Some connection was open for a whole interval outside faults, so a heartbeat was due."""
    for c in conns:
        assert c.opened is not None
        end = c.closed.mono if c.closed else max([c.opened.mono, *(f.mono for f in c.frames),
                                                  *(h.mono for h in c.heartbeats)])
        if end - c.opened.mono >= interval and (c.heartbeats or not overlaps_fault(c.opened.mono, end, faults)):
            return True
    return False
