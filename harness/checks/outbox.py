"""Invariant 6: the outbox converges once faults heal: ``nextSeq = lastSeq + 1`` and every event
has ``publishedAt``.

The check judges the snapshot it is given; waiting for convergence within a bound is the caller's job
(take the snapshot with a deadline after the last heal). ``unknown`` without a snapshot or while a
fault window is still open; the evidence says how long after the last heal the snapshot was taken.
"""

from __future__ import annotations

from harness.checks._deliveries import combine, fault_windows
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.model import RunSnapshot, Snapshot

NAME = "outbox_converged"


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    if snapshot is None:
        return unknown("no database snapshot")
    faults = fault_windows(history)
    open_faults = [f.name for f in faults if f.end is None]
    if open_faults:
        return unknown("faults still active when the snapshot was taken", open_faults=open_faults)
    healed = max((f.end_wall for f in faults if f.end_wall is not None), default=None)
    after = None if healed is None or snapshot.taken_at is None else round(snapshot.taken_at - healed, 3)
    if not snapshot.runs:
        return unknown("snapshot has no runs")
    return combine({run_id: check_run(run) for run_id, run in snapshot.runs.items()},
                   snapshot_after_heal_s=after)


def check_run(run: RunSnapshot) -> Result:
    base = {"run_id": run.run_id, "last_seq": run.last_seq, "next_seq": run.outbox_next_seq}
    unpublished = sorted(e.seq for e in run.events if e.published_at is None)
    if run.outbox_next_seq is None and run.last_seq > 0:
        return failed(problem="no outbox row", **base, unpublished=unpublished[:10])
    if run.outbox_next_seq is not None and run.outbox_next_seq != run.last_seq + 1:
        return failed(problem="nextSeq != lastSeq + 1", **base, backlog=run.last_seq - run.outbox_next_seq + 1,
                      seq=run.outbox_next_seq)
    if unpublished:
        return failed(problem="events without publishedAt", **base, seq=unpublished[0],
                      unpublished=unpublished[:10], unpublished_count=len(unpublished))
    return passed(**base)
