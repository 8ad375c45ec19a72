"""The service's metric log lines agree with its data (runbook: "Metrics Reference").

Reconciled with the database at the end of a scenario, for the snapshot's runs:
- one ``metric.events_inserted`` line per event row, of the row's type; a missing line is excused only
  by a fault on an appending path (an api or queue worker, its database link, PostgreSQL) near the
  row's ``ts`` (the append may have committed while its caller died or lost the reply); a line for
  no row, or a second line for one, is never excused;
- one ``metric.events_published`` line per published row, of the row's type, whose ``lag_ms`` is within
  ``max(metrics_lag_tolerance_ms, metrics_lag_tolerance_ratio x lag)`` (defaults 25 ms, 10 %) of the
  row's ``(publishedAt - ts)``; further lines for a row (a re-publish) and lines for a row left
  unpublished are excused only by a fault on the publish path (``fault_scope``: a killed or crashed
  outbox worker, its link, PostgreSQL) between the first line and ``metrics_settle_s`` (default 5 s)
  after the last, and such an earlier attempt cannot report more lag than the row's.
- the ``outbox_backlog_avg`` gauge, when the snapshot read it: the runbook's average backlog over
  started runs (from the database, read around each scrape). While the database's value stays the
  same for ``3 x backlog_sample_s`` (one period to sample, two of slack for a late sampler), a gauge
  that samples at all shows it; one that still shows another value then fails. A value that kept changing under the scrapes is reported, not judged.
Database times are put on the history's clock with the snapshot's measured offset. No logs collected,
or no event rows: ``unknown``.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from typing import Any

from harness.checks._deliveries import MAX_LISTED, fault_windows, overlaps_fault
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.checks.fault_scope import faults_on
from harness.model import EventRow, GaugeReading, InsertRecord, PublishRecord, Snapshot
from harness.history import FaultWindow

NAME = "metrics_agree"
PATTERN = "the service's metrics disagree with its data"

def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    if snapshot is None:
        return unknown("no snapshot")
    if snapshot.inserts is None or snapshot.publishes is None:
        return unknown("no service logs collected")
    rows = {(r.run_id, e.seq): e for r in snapshot.runs.values() for e in r.events}
    if not rows:
        return unknown("no event rows to reconcile")
    faults = fault_windows(history)
    settle = opts.metrics_settle_s
    tolerance = (opts.metrics_lag_tolerance_ms, opts.metrics_lag_tolerance_ratio)
    gauge_problems, gauge = _backlog_gauge(snapshot)
    problems = [*_inserted(snapshot, rows, faults_on(faults, "append"), settle),
                *_published(snapshot, rows, faults_on(faults, "publish"), settle, tolerance), *gauge_problems]
    evidence: dict[str, Any] = {"rows": len(rows), "insert_lines": len(snapshot.inserts),
                                "publish_lines": len(snapshot.publishes),
                                "lag_tolerance": {"ms": tolerance[0], "ratio": tolerance[1]}, "backlog_gauge": gauge}
    if problems:
        return failed(pattern=PATTERN, counterexample=problems[0], failures=problems[:MAX_LISTED],
                      failure_count=len(problems), **evidence)
    return passed(**evidence)


def _grouped(records: Iterable[InsertRecord | PublishRecord]) -> dict[tuple[str, int], list[Any]]:
    out: dict[tuple[str, int], list[Any]] = defaultdict(list)
    for rec in records:
        out[(rec.run_id, rec.seq)].append(rec)
    return out


def _inserted(snapshot: Snapshot, rows: dict[tuple[str, int], EventRow], faults: list[FaultWindow],
              settle: float) -> list[dict[str, Any]]:
    lines = _grouped(snapshot.inserts or ())
    out = []
    for (run_id, seq), row in sorted(rows.items()):
        got = lines.get((run_id, seq), [])
        where = {"metric": "metric.events_inserted", "run_id": run_id, "seq": seq}
        if not got:
            at = snapshot.to_wall(row.ts) if row.ts is not None else None
            if at is None or not overlaps_fault(at - settle, at + settle, faults, wall=True):
                out.append({"problem": "no line for an inserted row", **where, "type": row.type})
        elif len(got) > 1:
            out.append({"problem": f"{len(got)} lines for one inserted row", **where})
        elif got[0].type is not None and got[0].type != row.type:
            out.append({"problem": "line's type is not the row's", **where, "line": got[0].type, "row": row.type})
    out += [{"problem": "line for no row in the database", "metric": "metric.events_inserted",
             "run_id": run_id, "seq": seq, "lines": len(got)}
            for (run_id, seq), got in sorted(lines.items()) if (run_id, seq) not in rows]
    return out


def _published(snapshot: Snapshot, rows: dict[tuple[str, int], EventRow], faults: list[FaultWindow],
               settle: float, tolerance: tuple[float, float]) -> list[dict[str, Any]]:
    lines = _grouped(snapshot.publishes or ())
    out = []
    for (run_id, seq), got in sorted(lines.items()):
        where = {"metric": "metric.events_published", "run_id": run_id, "seq": seq}
        row = rows.get((run_id, seq))
        if row is None:
            out.append({"problem": "line for no row in the database", **where, "lines": len(got)})
            continue
        times = sorted(snapshot.to_wall(p.time) for p in got)
        excused = overlaps_fault(times[0], times[-1] + settle, faults, settle, wall=True)
        if row.published_at is None:
            if not excused:
                out.append({"problem": "line for a row never marked published", **where, "lines": len(got)})
            continue
        if len(got) > 1 and not excused:
            out.append({"problem": f"{len(got)} lines for one published row and no crash on the publish path "
                                   "to explain them", **where, "line_times": times})
        out += _lag_disagreements(row, got, tolerance, where)
    out += [{"problem": "no line for a published row", "metric": "metric.events_published",
             "run_id": run_id, "seq": seq, "type": row.type}
            for (run_id, seq), row in sorted(rows.items()) if row.published_at is not None and (run_id, seq) not in lines]
    return out


def _lag_disagreements(row: EventRow, got: list[PublishRecord], tolerance: tuple[float, float],
                       where: dict[str, Any]) -> list[dict[str, Any]]:
    """The line of the publish the row records (the one closest to its publishedAt) reports the row's
    lag; an earlier attempt's line (a re-publish) cannot report more."""
    assert row.published_at is not None
    if row.ts is None:
        return []
    db_ms = (row.published_at - row.ts) * 1000.0
    allowed = max(tolerance[0], tolerance[1] * abs(db_ms))
    out = []
    recorded = min(got, key=lambda p: abs(p.time - row.published_at))  # type: ignore[operator]
    for line in got:
        if line.type is not None and line.type != row.type:
            out.append({"problem": "line's type is not the row's", **where, "line": line.type, "row": row.type})
        if line.lag_ms is None:
            out.append({"problem": "line without lag_ms", **where})
        elif line is recorded and abs(line.lag_ms - db_ms) > allowed:
            out.append({"problem": "lag_ms differs from the database's publishedAt - ts", **where,
                        "lag_ms": line.lag_ms, "db_lag_ms": round(db_ms, 3), "allowed_ms": round(allowed, 3)})
        elif line is not recorded and line.lag_ms > db_ms + allowed:
            out.append({"problem": "a re-published line reports more lag than the row's publish", **where,
                        "lag_ms": line.lag_ms, "db_lag_ms": round(db_ms, 3), "allowed_ms": round(allowed, 3)})
    return out


def _backlog_gauge(snapshot: Snapshot) -> tuple[list[dict[str, Any]], dict[str, Any] | str]:
    """Problems with the backlog gauge, and what was seen of it per /metrics URL."""
    if snapshot.backlog_gauge is None or snapshot.backlog_sample_s is None:
        return [], "not read"
    by_url: dict[str, list[GaugeReading]] = defaultdict(list)
    for reading in snapshot.backlog_gauge:
        by_url[reading.source].append(reading)
    problems, seen = [], {}
    for url, readings in by_url.items():
        last = readings[-1]
        where = {"metric": "outbox_backlog_avg", "source": url, "gauge": last.value, "db_value": last.db_value}
        if any(_agrees(r) for r in readings):
            seen[url] = "agrees"
        elif all(r.value is None for r in readings):
            seen[url] = "not exposed"
            problems.append({"problem": "the backlog gauge is not exposed", **where})
        elif _stale_for(readings) >= 3 * snapshot.backlog_sample_s:
            seen[url] = "disagrees"
            problems.append({"problem": "the backlog gauge shows another value than the runbook's query", **where,
                             "db_stable_for_s": round(_stale_for(readings), 3)})
        else:
            seen[url] = "undecided: the database's backlog kept changing"
    return problems, seen


def _agrees(reading: GaugeReading) -> bool:
    return reading.value is not None and reading.db_value is not None and abs(reading.value - reading.db_value) <= 1e-6


def _stale_for(readings: list[GaugeReading]) -> float:
    """How long the database's value had stayed what the last reading saw, over the readings."""
    last = readings[-1].db_value
    if last is None:
        return 0.0
    start = readings[-1].wall
    for reading in reversed(readings):
        if reading.db_value != last:
            break
        start = reading.wall
    return readings[-1].wall - start
