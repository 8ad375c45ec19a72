"""Each scripted step is appended exactly once (the runbook's "workers restart a job from lastSeq").

A job retaken after its worker died, was cut off or was paused resumes from the event log: per run,
`RunStarted` is the first event and appears once, and the `RunStep` indices (`payload.step`) in seq
order are 0, 1, 2, ... without a repeat or a hole. A worker that appends beside the one that took
its job over (a lease fence that lets the older copy through) repeats indices: the evidence names
each repeated step with its seqs.

Runs with neither a `RunStarted` nor a stepped `RunStep` (events appended by hand) are not scripted
and are not judged; with no scripted run at all the verdict is unknown, never a vacuous pass.
"""

from __future__ import annotations

from collections import defaultdict

from harness.checks._deliveries import MAX_LISTED, combine, seq_ranges
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.model import RunSnapshot, Snapshot

NAME = "steps_once"
STARTED, STEP = "RunStarted", "RunStep"


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    if snapshot is None:
        return unknown("no database snapshot")
    judged = {run_id: check_run(run) for run_id, run in snapshot.runs.items() if is_scripted(run)}
    unscripted = sorted(set(snapshot.runs) - judged.keys())
    if not judged:
        return unknown("no scripted run in the snapshot", unscripted=unscripted[:MAX_LISTED])
    return combine(judged, unscripted=unscripted[:MAX_LISTED])


def is_scripted(run: RunSnapshot) -> bool:
    return any(e.type == STARTED or (e.type == STEP and e.step is not None) for e in run.events)


def check_run(run: RunSnapshot) -> Result:
    events = sorted(run.events, key=lambda e: e.seq)
    steps = [e for e in events if e.type == STEP]
    unindexed = [e.seq for e in steps if e.step is None]
    if unindexed:  # a scripted run's RunStep without payload.step: the snapshot cannot say which step it is
        return unknown("RunStep rows without a step index", run_id=run.run_id, seqs=unindexed[:MAX_LISTED])
    seqs_of: dict[int, list[int]] = defaultdict(list)
    for e in steps:
        seqs_of[e.step].append(e.seq)  # type: ignore[index]  # unindexed steps were ruled out above
    duplicated = [{"step": step, "seqs": seqs} for step, seqs in sorted(seqs_of.items()) if len(seqs) > 1]
    missing = sorted(set(range(max(seqs_of, default=-1) + 1)) - seqs_of.keys())
    # With no repeat and no hole, the steps in seq order must be exactly 0, 1, 2, ...
    out_of_order = None if duplicated or missing else next(
        ({"seq": e.seq, "step": e.step, "expected_step": i} for i, e in enumerate(steps) if e.step != i), None)
    started = [e.seq for e in events if e.type == STARTED]
    started_first = bool(started) and events[0].seq == started[0]
    summary = {"run_id": run.run_id, "steps": len(steps), "distinct_steps": len(seqs_of),
               "run_started_seqs": started}
    if duplicated or missing or out_of_order or len(started) != 1 or not started_first:
        problems = [p for p, bad in (("steps appended more than once", duplicated), ("steps missing", missing),
                                     ("steps out of order", out_of_order),
                                     ("RunStarted not appended exactly once", len(started) != 1),
                                     ("RunStarted is not the first event", started and not started_first)) if bad]
        return failed(problem="; ".join(problems), duplicated=duplicated[:MAX_LISTED],
                      duplicate_count=len(duplicated), missing=seq_ranges(missing), out_of_order=out_of_order, **summary)
    return passed(**summary)
