"""Invariant 3: no time travel: no frame is received before its event was published.

The publish time of (run, seq) is the database row's ``publishedAt`` (the start of the statement that
published it, so at or before any receipt), put on the history's wall clock with the snapshot's measured
``clock_offset_s``; the service's own log lines never stand in for it. A frame received more than the
tolerance before it fails: the offset's ``clock_uncertainty_s`` plus ``EPSILON_S`` (5 ms: the rounding of
two clock reads, far below a publish lag). A snapshot without a measured offset (taken by an older
harness) is read with offset 0 (one host, one clock) and ``FALLBACK_TOLERANCE_S`` (20 ms). A frame whose
event is still unpublished at the snapshot came before its publish: it fails. A frame of a run the
snapshot does not hold, or of a seq with no row (the content check fails that), is ``unknown``.

Publishing is at-least-once: a fault on the publish path (``fault_scope``) between a publish and its
mark rolls the mark back, and the re-publish after it sets the later ``publishedAt`` while the first
publish already reached clients. A frame received before ``publishedAt`` while a fault that can abort a
mark (not a held row lock, nor a failpoint that fires before the publish or only sleeps) was active
somewhere between the event's write and that ``publishedAt`` is judged against the row's ``ts`` instead: no
fault lets an event arrive before it was written.
"""

from __future__ import annotations

from typing import Any

from harness.checks._deliveries import MAX_LISTED, connections, fault_windows, overlaps_fault, publish_time, run_of
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.checks.fault_scope import faults_on
from harness.model import Snapshot
from harness.history import FaultWindow

NAME = "time_travel"
EPSILON_S = 0.005
FALLBACK_TOLERANCE_S = 0.02


def tolerance_s(snapshot: Snapshot) -> float:
    if snapshot.clock_offset_s is None:
        return FALLBACK_TOLERANCE_S
    return (snapshot.clock_uncertainty_s or 0.0) + EPSILON_S


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    frames = [(c, f) for c in connections(history) for f in c.frames if f.seq is not None]
    if not frames:
        return unknown("no frames in the history")
    if snapshot is None:
        return unknown("no snapshot: publish times unknown", frames=len(frames))
    tol = tolerance_s(snapshot)
    aborts = [f for f in faults_on(fault_windows(history), "publish") if _may_roll_back_a_mark(f)]
    early: list[dict[str, Any]] = []
    undecided: list[dict[str, Any]] = []
    for conn, fr in frames:
        assert fr.seq is not None
        at = {"conn": conn.conn, "consumer": conn.consumer, "run_id": conn.run_id, "seq": fr.seq,
              "received_at": fr.wall}
        run = run_of(snapshot, conn.run_id)
        row = run.event(fr.seq) if run is not None else None
        published = publish_time(snapshot, conn.run_id, fr.seq)
        if row is None:
            undecided.append(at)
        elif published is None or fr.wall < published - tol:
            written = snapshot.to_wall(row.ts) if row.ts is not None else None
            if _republished(written, fr.wall, published, snapshot, aborts):
                if written is not None and fr.wall < written - tol:
                    early.append({**at, "written_at": written, "problem": "received before the event was written",
                                  "early_by_s": round(written - fr.wall, 6)})
            elif published is None:
                early.append({**at, "published_at": None, "problem": "received, but unpublished at the snapshot",
                              "early_by_s": None})
            else:
                early.append({**at, "published_at": published, "early_by_s": round(published - fr.wall, 6)})
    if early:
        early.sort(key=lambda e: -e["early_by_s"] if e["early_by_s"] is not None else float("-inf"))
        return failed(counterexample=early[0], early=early[:MAX_LISTED], early_count=len(early), tolerance_s=tol)
    if undecided:
        return unknown("frames for events the snapshot does not hold", undecided=undecided[:MAX_LISTED],
                       undecided_count=len(undecided))
    return passed(frames=len(frames), tolerance_s=tol)


# Failpoints that fire after the publish and before the commit of its mark; a sleep there ends and the
# mark commits, so only an action that aborts the transaction (crash, error, hang) rolls it back.
_AFTER_PUBLISH = ("failpoint:outbox.after_publish", "failpoint:outbox.before_commit")


def _may_roll_back_a_mark(fault: FaultWindow) -> bool:
    """A held outbox row lock or a failpoint elsewhere never aborts a publish's mark; a kill, a pause, a
    cut link or terminated sessions may (a stalled transaction times out)."""
    if fault.name == "lock_outbox":
        return False
    if fault.name.startswith("failpoint:"):
        return fault.name in _AFTER_PUBLISH and "sleep" not in str(fault.params.get("action", ""))
    return True


def _republished(written: float | None, received: float, published: float | None, snapshot: Snapshot,
                 aborts: list[FaultWindow]) -> bool:
    """A fault that can abort a mark was active between the event's write and the row's (later or missing)
    publishedAt: the frame may come from a publish whose mark it rolled back. The abort may end before
    the receipt (a crash is over once the process is dead; its first publish is still on the wire)."""
    until = published if published is not None else (snapshot.taken_at or received)
    start = written if written is not None else received
    return overlaps_fault(min(start, received), max(received, until), aborts, wall=True)
