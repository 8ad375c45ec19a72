"""Throughput: closed-loop appenders (one keep-alive connection per run, back to back) for a fixed
time; how many events/s the stack appends and publishes, and how far publishing lags.

- appended/s: 201 answers completed in the window, from the appenders' own counts;
- published/s: rows whose publishedAt falls in the window, from PostgreSQL (direct connection);
- publish lag: publishedAt - ts of the events appended in the window (PostgreSQL), cross-checked
  with the outbox's own `metric.events_published` lag_ms log field;
- delivered lag: a few SSE streams (one per run on the first runs) measure ts -> client parse;
- drain: after the load stops, how long until no event is left unpublished (bounded wait).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import psycopg

from harness.bench.common import BenchError, BenchStack, create_runs, merge_counts
from harness.bench.cpu import CpuMeter
from harness.bench.loadgen import AppendJob, ConsumerJob, LoadProcesses, read_samples
from harness.bench.stats import LatencySummary, summarize
from harness.service_logs import PUBLISHED, read_log_lines

__all__ = ["ThroughputParams", "ThroughputResult", "outbox_log_lags", "run_throughput"]

# Only the bench's own runs: an existing server (HARNESS_POSTGRES_DSN) may hold other rows.
_PUBLISHED = """SELECT count(*) FROM run_events WHERE runId = ANY(%s)
AND publishedAt >= to_timestamp(%s) AND publishedAt < to_timestamp(%s)"""
# percentile_disc: the nearest-rank rule of harness.checks.lag.percentile, so the bench and `harness lag` agree
_PUBLISH_LAG = """
SELECT count(*), percentile_disc(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY lag), max(lag), avg(lag)
FROM (SELECT extract(epoch FROM publishedAt - ts) * 1000 AS lag FROM run_events
      WHERE runId = ANY(%s) AND ts >= to_timestamp(%s) AND ts < to_timestamp(%s) AND publishedAt IS NOT NULL) l
"""
_BACKLOG = "SELECT count(*) FROM run_events WHERE runId = ANY(%s) AND publishedAt IS NULL"


@dataclass(frozen=True)
class ThroughputParams:
    duration_s: float = 20.0
    warmup_s: float = 3.0
    runs: int = 32  # one connection each
    appender_procs: int = 2
    streams: int = 10  # SSE streams (one per run) measuring delivered lag; 0: none
    drain_timeout_s: float = 60.0


@dataclass
class ThroughputResult:
    params: ThroughputParams
    appended: int
    appended_per_s: float
    published: int
    published_per_s: float
    publish_lag_ms: LatencySummary  # PostgreSQL: publishedAt - ts
    outbox_log_lag_ms: LatencySummary  # the outbox's lag_ms log field, lines logged in the window
    delivered_lag_ms: LatencySummary  # SSE: client parse - ts
    append_ms: LatencySummary
    backlog_at_stop: int
    drain_s: float | None  # None: not drained within drain_timeout_s
    errors: list[str] = field(default_factory=list)
    cpu: dict[str, Any] = field(default_factory=dict)


def run_throughput(stack: BenchStack, params: ThroughputParams,
                   say: Callable[[str], None] = lambda _: None) -> ThroughputResult:
    urls = tuple(stack.info.api_direct_urls)
    run_ids = create_runs(urls[0], params.runs)
    with tempfile.TemporaryDirectory(prefix="bench-tput-", ignore_cleanup_errors=True) as out_dir:
        return _measure(stack, params, say, run_ids, Path(out_dir))


def _measure(stack: BenchStack, params: ThroughputParams, say: Callable[[str], None], run_ids: list[str],
             out_dir: Path) -> ThroughputResult:
    urls = tuple(stack.info.api_direct_urls)
    total_s = params.warmup_s + params.duration_s
    procs_n = max(1, min(params.appender_procs, params.runs))
    streams = min(params.streams, params.runs)
    with LoadProcesses(out_dir) as load:
        if streams:
            paths = tuple(f"/api/agents/runs/{r}/stream" for r in run_ids[:streams])
            load.start(ConsumerJob("consumer", urls, paths, time.time() + 30 + total_s + params.drain_timeout_s,
                                   str(out_dir / "consumer")))
            problems = load.wait_ready(["consumer"], timeout=30)
            if problems:
                raise BenchError("SSE consumer could not open its streams: " + "; ".join(problems))
        start = time.time() + 2.0
        window = (start + params.warmup_s, start + total_s)
        names = []
        for p in range(procs_n):
            name = f"appender-{p}"
            load.start(AppendJob(name, urls, tuple(run_ids[p::procs_n]), None, start, window[1], window,
                                 str(out_dir / name)))
            names.append(name)
        problems = load.wait_ready(names, timeout=max(0.5, start - time.time()))
        if problems:
            raise BenchError("appenders could not connect: " + "; ".join(problems))
        meter = CpuMeter(stack.cpu_groups(),
                         {f"bench {n}": pid for n, pid in load.pids().items()} | {"bench harness": os.getpid()})
        say(f"throughput: {params.runs} runs back to back from {procs_n} processes,"
            f" {params.warmup_s:.0f} s warm-up + {params.duration_s:.0f} s measured")
        _sleep_until(window[0])
        meter.start()
        _sleep_until(window[1])
        meter.stop()
        with psycopg.connect(stack.info.dsn, autocommit=True) as conn:
            backlog, drain_s = _drain(conn, run_ids, window[1], params.drain_timeout_s)
            say(f"throughput: backlog {backlog} at the end of the load, drained in "
                + (f"{drain_s:.2f} s" if drain_s is not None else f"more than {params.drain_timeout_s:.0f} s"))
            appenders = load.collect(names)
            published = _aggregate(conn, _PUBLISHED, (run_ids, *window))[0]
            publish_lag = _db_lag(conn, run_ids, window)
        time.sleep(0.5)
        load.signal_stop()
        consumers = load.collect(["consumer"]) if streams else []
    errors = [f"{r.get('name')}: {r['error']}" for r in [*appenders, *consumers] if r.get("error")]
    failed = merge_counts(appenders, "errors")
    if failed:
        errors.append(f"{failed} failed appends")
    delivered: list[float] = []
    if streams:
        stamps, lags = read_samples(str(out_dir / "consumer"))
        delivered = [x for ts, x in zip(stamps, lags) if window[0] <= ts < window[1]]
    duration = window[1] - window[0]
    appended = merge_counts(appenders, "ok_in_window")
    return ThroughputResult(
        params=params, appended=appended, appended_per_s=appended / duration, published=published,
        published_per_s=published / duration, publish_lag_ms=publish_lag,
        outbox_log_lag_ms=summarize(outbox_log_lags(Path(stack.info.logs_dir), window)),
        delivered_lag_ms=summarize(delivered),
        append_ms=summarize([x for r in appenders for x in r.get("latencies_ms", [])]),
        backlog_at_stop=backlog, drain_s=drain_s, errors=errors, cpu=meter.to_dict())


def _drain(conn: psycopg.Connection[Any], run_ids: list[str], stopped_at: float,
           timeout: float) -> tuple[int, float | None]:
    """The backlog right after the load, and the seconds from the load's end until it is empty."""
    backlog = _aggregate(conn, _BACKLOG, (run_ids,))[0]
    deadline = time.monotonic() + timeout
    left = backlog
    while left and time.monotonic() < deadline:
        time.sleep(0.05)
        left = _aggregate(conn, _BACKLOG, (run_ids,))[0]
    return backlog, (max(0.0, time.time() - stopped_at) if not left else None)


def _db_lag(conn: psycopg.Connection[Any], run_ids: list[str], window: tuple[float, float]) -> LatencySummary:
    count, pcts, top, mean = _aggregate(conn, _PUBLISH_LAG, (run_ids, *window))
    if not count:
        return summarize([])
    p50, p95, p99 = (float(x) for x in pcts)
    return LatencySummary(int(count), p50, p95, p99, float(top), float(mean))


def _aggregate(conn: psycopg.Connection[Any], sql: str, params: tuple[Any, ...]) -> tuple[Any, ...]:
    """The one row of an aggregate query (never none: aggregates without a GROUP BY always answer a row)."""
    row: tuple[Any, ...] | None = conn.execute(sql, params).fetchone()
    if row is None:
        raise BenchError(f"no row from: {' '.join(sql.split())[:60]}")
    return row


def outbox_log_lags(logs_dir: Path, window: tuple[float, float]) -> list[float]:
    """lag_ms of every `metric.events_published` line the outbox workers logged within the window."""
    lines = read_log_lines(logs_dir, msg=PUBLISHED, files="outbox-worker-*.log")
    return [float(ln.obj["lag_ms"]) for ln in lines if ln.timestamp is not None and window[0] <= ln.timestamp < window[1]
            and isinstance(ln.obj.get("lag_ms"), (int, float)) and not isinstance(ln.obj.get("lag_ms"), bool)]


def _sleep_until(moment: float) -> None:
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 0.5))
