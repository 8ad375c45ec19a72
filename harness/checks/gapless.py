"""Invariant 5: the event log is gapless: the seqs of every run are exactly 1..lastSeq."""

from __future__ import annotations

from collections import Counter

from harness.checks._deliveries import combine, seq_ranges
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.model import RunSnapshot, Snapshot

NAME = "gapless"


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    if snapshot is None:
        return unknown("no database snapshot")
    if not snapshot.runs:
        return unknown("snapshot has no runs")
    return combine({run_id: check_run(run) for run_id, run in snapshot.runs.items()})


def check_run(run: RunSnapshot) -> Result:
    counts = Counter(e.seq for e in run.events)
    missing = sorted(set(range(1, run.last_seq + 1)) - counts.keys())
    repeated = sorted(s for s, n in counts.items() if n > 1)
    beyond = sorted(s for s in counts if s > run.last_seq or s < 1)
    if missing or repeated or beyond:
        first = (missing or repeated or beyond)[0]
        return failed(run_id=run.run_id, seq=first, last_seq=run.last_seq, missing=seq_ranges(missing),
                      repeated=repeated, beyond_last_seq=beyond)
    return passed(run_id=run.run_id, last_seq=run.last_seq)
