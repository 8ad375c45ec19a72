"""Invariant 8 as clients see it: delivered lag (an event's ``ts`` to a live frame's receipt, on the
harness clock with the measured offset) stays in the runbook's classes while nothing faults the
delivery path.

It is the ``lag`` checker over ``lag_source="delivery"`` samples with two bounds: the median must be in
the normal class (< 100 ms) and the ``p95`` must not be critical (<= 500 ms). The median is the level a
client lives with, and a stream degraded to heartbeat pace moves it by half an interval; the ``p95``
bound catches a tail the median hides, while one scheduler hiccup on a busy CI machine does not fail a
scenario of twenty frames. No trend test: a recovery's draining backlog rises then falls, and the two
bounds already judge where it ends. Options as for ``lag`` (``lag_settle_s``, how long after a fault lag
is steady again); fewer than
``lag_min_samples`` (default 1) live frames: ``unknown``, so a scenario whose clients only backfill
names the invariants it judges without this one.
"""

from __future__ import annotations

from dataclasses import replace

from harness.checks import lag
from harness.checks._result import HistoryLike, Result, merge_valid
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.model import Snapshot

NAME = "delivered_lag"
MIN_SAMPLES = 1  # option lag_min_samples unset: one live frame is enough to judge


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    base = replace(opts, lag_min_samples=MIN_SAMPLES if opts.lag_min_samples is None else opts.lag_min_samples,
                   lag_source="delivery", lag_fail_on_trend=False)
    level = lag.check(history, snapshot, replace(base, lag_basis="p50", lag_bound_ms=lag.NORMAL_MS))
    tail = lag.check(history, snapshot, replace(base, lag_basis="p95", lag_bound_ms=lag.WARNING_MS))
    verdict = merge_valid((level.valid, tail.valid))
    return Result(verdict, {**level.evidence, "p95_check": tail.to_dict()})
