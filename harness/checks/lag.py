"""Invariant 8: lag stays within the runbook's classes in steady state.

``classify_lag`` summarises samples (avg / p50 / p95 / p99 / max, class, increasing trend) with the
runbook's thresholds: normal < 100 ms, warning 100-500 ms, critical > 500 ms *or an increasing trend*.

The check's samples (option ``lag_source``), from the database and the wire only (the service's own
``lag_ms`` log lines are checked against these by ``metrics_agree``, never used instead of them):
- ``"publish"`` (default with a snapshot): ``publishedAt - ts`` per event row: the runbook's
  ``lag_ms`` (evt.ts -> publish), both on PostgreSQL's clock.
- ``"delivery"``: receive time of live frames minus the event's ``ts`` (the row's when the snapshot
  has it, else the frame's), put on the harness clock with the snapshot's measured clock offset.
  Frames for events older than their connection are backfill, not lag, and are left out.
Steady state drops samples whose span (event ts to publish or receipt) touches a fault window on the
sample's path (``fault_scope``: ``publish`` or ``delivery``, and ``commit``: a slowed append link delays
the commit after ``ts``) or comes within ``lag_settle_s``
(default 1.0) after it: a fault elsewhere, say on the queue worker, excuses nothing.
The verdict compares the ``lag_basis`` statistic (default ``p95``) with ``lag_bound_ms`` (default 500)
and fails on an increasing trend when ``lag_fail_on_trend`` (default True); fewer than
``lag_min_samples`` (default 5) samples: ``unknown``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from harness.checks._deliveries import connections, fault_windows, overlaps_fault
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.checks.fault_scope import faults_on
from harness.model import Snapshot

NAME = "lag"
NORMAL_MS = 100.0
WARNING_MS = 500.0
MIN_SAMPLES = 5  # option lag_min_samples unset


@dataclass(frozen=True)
class LagSample:
    time: float  # harness wall clock of the observation (publish or receipt); the event is lag_ms older
    lag_ms: float
    run_id: str = ""
    seq: int | None = None


@dataclass(frozen=True)
class LagSummary:
    count: int
    avg: float
    p50: float
    p95: float
    p99: float
    max: float
    cls: str  # "normal" | "warning" | "critical"
    increasing: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def lag_class(value_ms: float) -> str:
    if value_ms < NORMAL_MS:
        return "normal"
    return "warning" if value_ms <= WARNING_MS else "critical"


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, in any order, by the nearest-rank rule: the
    ceil(q / 100 x n)-th smallest value (the smallest for q = 0), i.e. the smallest observed value with
    at least q % of the values at or below it.

    The project's one percentile rule (the lag check, the runbook's alerts, the bench's summaries): it
    is always an observed value, which is what the runbook's thresholds are about and what a
    counterexample needs; no interpolation between ranks (numpy's default, PostgreSQL's
    `percentile_cont`). PostgreSQL's `percentile_disc` is the same rule."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    if not values:
        raise ValueError("percentile of no values")
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))  # ceil without floats drifting
    return ordered[int(rank) - 1]


def increasing_trend(values: Sequence[float], min_samples: int = 6, ratio: float = 1.5,
                     min_rise_ms: float = 50.0) -> bool:
    """A sustained rise: the last third's median well above the first third's, and a positive slope.

    Medians of thirds keep one spike from reading as a trend; the absolute floor keeps 2 ms -> 4 ms
    (a doubling, but noise) from reading as one.
    """
    if len(values) < min_samples:
        return False
    third = len(values) // 3
    first, last = statistics.median(values[:third]), statistics.median(values[-third:])
    return last - first >= min_rise_ms and last >= first * ratio and _slope(values) > 0


def _slope(values: Sequence[float]) -> float:
    n = len(values)
    mean_x, mean_y = (n - 1) / 2, statistics.fmean(values)
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den if den else 0.0


def classify_lag(samples: Sequence[float | LagSample], basis: str = "p95") -> LagSummary:
    """Summarise lag samples in ms, in time order (the trend reads the order)."""
    values = [s.lag_ms if isinstance(s, LagSample) else float(s) for s in samples]
    if not values:
        raise ValueError("classify_lag needs at least one sample")
    stats = {"avg": statistics.fmean(values), "p50": percentile(values, 50), "p95": percentile(values, 95),
             "p99": percentile(values, 99), "max": max(values)}
    rising = increasing_trend(values)
    cls = "critical" if rising else lag_class(stats[basis])
    return LagSummary(len(values), cls=cls, increasing=rising, **stats)


def lag_samples(history: HistoryLike, snapshot: Snapshot | None, source: str) -> list[LagSample]:
    if source == "delivery":
        return _delivery_samples(history, snapshot)
    if snapshot is None:
        return []
    out = [LagSample(snapshot.to_wall(e.published_at), (e.published_at - e.ts) * 1000.0, r.run_id, e.seq)
           for r in snapshot.runs.values() for e in r.events if e.published_at is not None and e.ts is not None]
    return sorted(out, key=lambda s: s.time)


def _delivery_samples(history: HistoryLike, snapshot: Snapshot | None) -> list[LagSample]:
    out = []
    for conn in connections(history):
        opened = conn.opened.wall if conn.opened else float("-inf")
        run = snapshot.runs.get(conn.run_id) if snapshot is not None else None
        for fr in conn.frames:
            row = run.event(fr.seq) if run is not None and fr.seq is not None else None
            ts = row.ts if row is not None and row.ts is not None else fr.event_ts
            if ts is None:
                continue
            event_wall = snapshot.to_wall(ts) if snapshot is not None else ts
            if event_wall >= opened:
                out.append(LagSample(fr.wall, (fr.wall - event_wall) * 1000.0, conn.run_id, fr.seq))
    return sorted(out, key=lambda s: s.time)


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    source = opts.lag_source or ("publish" if snapshot is not None else "delivery")
    basis, bound = opts.lag_basis, opts.lag_bound_ms
    windows = fault_windows(history)
    faults = faults_on(windows, "delivery" if source == "delivery" else "publish") + faults_on(windows, "commit")
    steady = [s for s in lag_samples(history, snapshot, source)
              if not overlaps_fault(s.time - s.lag_ms / 1000.0, s.time, faults, opts.lag_settle_s, wall=True)]
    if len(steady) < (MIN_SAMPLES if opts.lag_min_samples is None else opts.lag_min_samples):
        return unknown("too few steady-state lag samples", source=source, samples=len(steady))
    summary = classify_lag(steady, basis)
    value = getattr(summary, basis)
    evidence = {"source": source, "basis": basis, "bound_ms": bound, "summary": summary.to_dict()}
    if value > bound:
        worst = max(steady, key=lambda s: s.lag_ms)
        return failed(problem=f"{basis} lag above the bound", **evidence, counterexample=asdict(worst))
    if summary.increasing and opts.lag_fail_on_trend:
        return failed(problem="lag is increasing", **evidence, first=asdict(steady[0]), last=asdict(steady[-1]))
    return passed(**evidence)
