"""The runbook's four "Recommended Alerting Rules", evaluated over the database and the logs.

Each rule is a pure function over plain data (tested without a stack); `gather` reads that data.

- Run stall: a run still ``started`` whose first event (or ``startedAt``) is older than ``stall_after_s``
  (runbook: 10 minutes). The runbook writes ``MAX(ts) - MIN(ts) > 10 minutes WHERE state='started'``;
  a stalled run stops producing ``ts``, so ``MAX(ts)`` is taken as now, i.e. "no RunFinished after 10 minutes".
- Outbox backlog: ``AVG(runs.lastSeq - run_outbox.nextSeq) > 100`` over runs that are started or behind,
  held for ``backlog_for_s`` (runbook: 5 minutes). The past is rebuilt from ``run_events`` (an event is
  in the backlog at t when ``ts <= t`` and it was not published by t), sampled every ``backlog_step_s``.
- High lag: ``P95(lag_ms) > 1000`` over the last ``lag_window_s`` (5 minutes) of ``metric.events_published``.
- SSE churn: more than 10 ``stream-run`` connections for one runId in ``churn_window_s`` (1 minute): the
  runbook's `grep "stream-run" | grep fromSeq | cut -d' ' -f5 | sort | uniq -c` counts connections.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.checks.lag import percentile
from harness.runbook._db import connect, fetch_all, fetch_one
from harness.service_logs import RUNBOOK_LOGS, publishes_from_log_lines, read_log_lines
from harness.target.profile import LogSpec

__all__ = ["AlertResult", "AlertThresholds", "AlertData", "alerts_json", "evaluate", "evaluate_alerts", "gather",
           "run_stall", "outbox_backlog", "high_lag", "sse_churn"]


@dataclass(frozen=True)
class AlertThresholds:
    """The runbook's thresholds, each configurable."""

    stall_after_s: float = 600.0
    backlog_threshold: float = 100.0
    backlog_for_s: float = 300.0
    backlog_step_s: float = 0.0  # 0: backlog_for_s / 10 (at least 0.5 s)
    lag_p95_ms: float = 1000.0
    lag_window_s: float = 300.0
    churn_reconnects: int = 10
    churn_window_s: float = 60.0

    @property
    def step_s(self) -> float:
        return self.backlog_step_s or max(0.5, self.backlog_for_s / 10)


@dataclass
class AlertResult:
    name: str
    firing: bool
    why: str
    action: str
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class AlertData:
    """What the rules read, as plain data (times are epoch seconds of the database's clock / the logs)."""

    now: float
    started_runs: list[dict[str, Any]] = field(default_factory=list)  # id, first (epoch), last (epoch|None)
    backlog_now: float | None = None  # the runbook's AVG(lastSeq - nextSeq) right now
    backlog_samples: list[tuple[float, float | None]] = field(default_factory=list)  # (at, avg) oldest first
    lag_ms: list[float] = field(default_factory=list)  # lag_ms of the lag window, in time order
    connections: list[str] = field(default_factory=list)  # runId of every stream-run line in the churn window


def run_stall(data: AlertData, t: AlertThresholds) -> AlertResult:
    stalled = [{"runId": r["id"], "age_s": round(data.now - r["first"], 1),
                "last_event_age_s": None if r.get("last") is None else round(data.now - r["last"], 1)}
               for r in data.started_runs if r.get("first") is not None and data.now - r["first"] > t.stall_after_s]
    why = (f"{len(stalled)} started run(s) without RunFinished after {t.stall_after_s:g}s" if stalled
           else f"no started run older than {t.stall_after_s:g}s ({len(data.started_runs)} started)")
    return AlertResult("run_stall", bool(stalled), why, "Alert on-call, run the diagnostic checklist"
                       " (`harness diagnose RUN_ID`)", {"stalled": stalled[:10], "started": len(data.started_runs)})


def outbox_backlog(data: AlertData, t: AlertThresholds) -> AlertResult:
    action = "Scale outbox workers or investigate slow DB (`harness backlog`, `harness recover restart-outbox`)"
    evidence: dict[str, Any] = {"avg_backlog_now": data.backlog_now, "threshold": t.backlog_threshold,
                                "for_s": t.backlog_for_s}
    if t.backlog_for_s <= 0:
        firing = data.backlog_now is not None and data.backlog_now > t.backlog_threshold
        values = [data.backlog_now]
    else:
        values = [v for _, v in data.backlog_samples]
        firing = bool(values) and all(v is not None and v > t.backlog_threshold for v in values)
        evidence["samples"] = [[round(at, 3), v] for at, v in data.backlog_samples]
    low = min((v for v in values if v is not None), default=None)
    why = (f"average backlog above {t.backlog_threshold:g} for {t.backlog_for_s:g}s (min {low}, now {data.backlog_now})"
           if firing else f"average backlog not above {t.backlog_threshold:g} throughout {t.backlog_for_s:g}s"
                          f" (now {data.backlog_now}, lowest {low})")
    return AlertResult("outbox_backlog", firing, why, action, evidence)


def high_lag(data: AlertData, t: AlertThresholds) -> AlertResult:
    action = "Check DB performance, indexes (`harness schema-check`), worker health (`harness lag`)"
    if not data.lag_ms:
        return AlertResult("high_lag", False, f"no metric.events_published lines in the last {t.lag_window_s:g}s",
                           action, {"samples": 0})
    p95 = percentile(data.lag_ms, 95)
    firing = p95 > t.lag_p95_ms
    why = f"p95 lag_ms {p95:.1f} {'>' if firing else '<='} {t.lag_p95_ms:g} over {len(data.lag_ms)} publishes"
    return AlertResult("high_lag", firing, why, action, {"p95_ms": p95, "samples": len(data.lag_ms),
                                                          "threshold_ms": t.lag_p95_ms})


def sse_churn(data: AlertData, t: AlertThresholds) -> AlertResult:
    counts = Counter(data.connections)
    churning = {run: n for run, n in counts.most_common() if n > t.churn_reconnects}
    top = counts.most_common(1)
    why = (f"{len(churning)} run(s) with more than {t.churn_reconnects} reconnects in {t.churn_window_s:g}s"
           if churning else f"at most {top[0][1] if top else 0} connection(s) per run in {t.churn_window_s:g}s")
    return AlertResult("sse_churn", bool(churning), why, "Check reverse proxy (buffering), heartbeat interval",
                       {"runs": dict(list(churning.items())[:10]), "threshold": t.churn_reconnects})


RULES = (run_stall, outbox_backlog, high_lag, sse_churn)


def evaluate(data: AlertData, thresholds: AlertThresholds) -> list[AlertResult]:
    return [rule(data, thresholds) for rule in RULES]


# ---- reading the data -----------------------------------------------------------------------------

STARTED_SQL = """SELECT r.id, extract(epoch FROM coalesce(min(e.ts), r.startedAt)) AS first,
       extract(epoch FROM max(e.ts)) AS last
FROM runs r LEFT JOIN run_events e ON e.runId = r.id
WHERE r.state = 'started' GROUP BY r.id, r.startedAt"""
BACKLOG_NOW_SQL = """SELECT AVG(r.lastSeq - o.nextSeq)::float8 AS avg
FROM run_outbox o JOIN runs r ON r.id = o.runId
WHERE r.state = 'started' OR o.nextSeq <= r.lastSeq"""
BACKLOG_SERIES_SQL = """WITH t AS (
  SELECT generate_series(now() - make_interval(secs => %(window)s), now(), make_interval(secs => %(step)s)) AS at),
e AS (SELECT runId, ts, publishedAt FROM run_events
      WHERE publishedAt IS NULL OR publishedAt > now() - make_interval(secs => %(window)s)),
active AS (
  SELECT t.at, r.id AS runId FROM t JOIN runs r ON r.startedAt <= t.at AND (r.finishedAt IS NULL OR r.finishedAt > t.at)
  UNION
  SELECT t.at, e.runId FROM t JOIN e ON e.ts <= t.at AND (e.publishedAt IS NULL OR e.publishedAt > t.at))
SELECT extract(epoch FROM t.at) AS at,
       (SELECT avg(b)::float8 FROM (
          SELECT (SELECT count(*) FROM run_events x WHERE x.runId = a.runId AND x.ts <= a.at
                    AND (x.publishedAt IS NULL OR x.publishedAt > a.at)) - 1 AS b
          FROM active a WHERE a.at = t.at) s) AS avg
FROM t ORDER BY t.at"""


def gather(dsn: str, logs_dir: Path | None, t: AlertThresholds, spec: LogSpec = RUNBOOK_LOGS) -> AlertData:
    with connect(dsn) as conn:
        now = float((fetch_one(conn, "SELECT extract(epoch FROM now()) AS now") or {})["now"])
        started = [{"id": r["id"], "first": _f(r["first"]), "last": _f(r["last"])} for r in fetch_all(conn, STARTED_SQL)]
        backlog_now = (fetch_one(conn, BACKLOG_NOW_SQL) or {}).get("avg")
        samples = []
        if t.backlog_for_s > 0:
            rows = fetch_all(conn, BACKLOG_SERIES_SQL, {"window": t.backlog_for_s, "step": t.step_s})
            samples = [(float(r["at"]), _f(r["avg"])) for r in rows]
    data = AlertData(now, started, _f(backlog_now), samples)
    if logs_dir is not None:
        _read_logs(data, logs_dir, t, spec)
    return data


def _read_logs(data: AlertData, logs_dir: Path, t: AlertThresholds, spec: LogSpec) -> None:
    lines = read_log_lines(logs_dir, since_s=max(t.lag_window_s, t.churn_window_s), spec=spec)
    lag_cut, churn_cut = data.now - t.lag_window_s, data.now - t.churn_window_s
    pubs = publishes_from_log_lines(lines)
    data.lag_ms = [p.lag_ms for p in sorted(pubs, key=lambda p: p.time) if p.lag_ms is not None and p.time >= lag_cut]
    data.connections = [ln.run_id for ln in lines if ln.msg == "stream-run" and ln.run_id
                        and (ln.timestamp or 0) >= churn_cut]


def _f(value: Any) -> float | None:
    return None if value is None else float(value)


def evaluate_alerts(dsn: str, logs_dir: Path | None, thresholds: AlertThresholds | None = None,
                    spec: LogSpec = RUNBOOK_LOGS) -> list[AlertResult]:
    """The runbook's alert rules over the database and the logs (read as `spec`: a target's format and names)."""
    thresholds = thresholds or AlertThresholds()
    return evaluate(gather(dsn, logs_dir, thresholds, spec), thresholds)


def alerts_json(results: list[AlertResult]) -> dict[str, Any]:
    """What `harness alerts --json` prints: the firing rules' names, then every rule's result."""
    return {"firing": [r.name for r in results if r.firing], "alerts": [r.to_dict() for r in results]}
