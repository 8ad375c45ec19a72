"""The snapshot the checkers judge: the runs' rows read directly (never through a proxy), the clock
offset to PostgreSQL, the backlog gauge beside the database's value, and the service's metric lines."""
from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import psycopg

from harness.model import (
    TERMINAL_TYPE,
    EventRow,
    GaugeReading,
    InsertRecord,
    PublishRecord,
    RunSnapshot,
    Snapshot,
    payload_digest,
    to_epoch,
)
from harness.service_logs import (
    INSERTED,
    PUBLISHED,
    RUNBOOK_LOGS,
    inserts_from_log_lines,
    publishes_from_log_lines,
    read_log_lines,
)
from harness.target.profile import LogSpec
from harness.errors import PostgresError, WaitTimeout
from harness.stack import LocalStack
from harness.stack.waiting import wait_until

_RUNS = """
SELECT r.id, r.state, r.lastSeq, o.nextSeq
FROM runs r LEFT JOIN run_outbox o ON o.runId = r.id
WHERE r.id = ANY(%s)
"""
_EVENTS = """
SELECT runId, seq, type, ts, publishedAt, payload FROM run_events WHERE runId = ANY(%s) ORDER BY runId, seq
"""
CLOCK_SAMPLES = 5
# The runbook's outbox backlog (CONTRACTS: the `outbox_backlog_avg` gauge): over started runs, 0 for none.
_BACKLOG = """
SELECT coalesce(avg(r.lastSeq - o.nextSeq), 0)::float8
FROM run_outbox o JOIN runs r ON r.id = o.runId WHERE r.state = 'started'
"""
GAUGE = "outbox_backlog_avg"


@dataclass(frozen=True)
class GaugeProbe:
    """Where the service exposes its backlog gauge, and how often it samples it."""

    urls: tuple[str, ...]  # /metrics URLs
    sample_s: float  # the service's BACKLOG_SAMPLE_MS, in seconds


def gauge_probe(stack: LocalStack) -> GaugeProbe | None:
    """The API replicas' /metrics of a stack whose service the harness runs (its sample period known)."""
    service = stack.config.service
    if service is None or not stack.info.api_direct_urls or "metrics_endpoint" not in stack.profile.capabilities:
        return None
    return GaugeProbe(tuple(f"{url.rstrip('/')}/metrics" for url in stack.info.api_direct_urls),
                      service.intervals.backlog_sample_ms / 1000)


def snapshot_of(stack: LocalStack, run_ids: Iterable[str]) -> Snapshot:
    """`take_snapshot` of a stack the harness runs: its logs read as its target's profile says, its
    backlog gauge scraped where the target has one."""
    return take_snapshot(stack.info.dsn, run_ids, Path(stack.info.logs_dir), gauge_probe(stack), stack.profile.logs)


def take_snapshot(dsn: str, run_ids: Iterable[str], logs_dir: Path | None = None,
                  gauges: GaugeProbe | None = None, log_spec: LogSpec = RUNBOOK_LOGS) -> Snapshot:
    ids = sorted(set(run_ids))
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            offset, uncertainty = _clock_offset(conn)
            runs = conn.execute(_RUNS, (ids,)).fetchall()
            events = conn.execute(_EVENTS, (ids,)).fetchall()
            readings = None if gauges is None else _backlog_readings(conn, gauges)
    except psycopg.Error as exc:
        raise PostgresError(f"observer could not read the database at {dsn}: {exc}") from exc
    inserts, publishes = _metric_lines(logs_dir, set(ids), log_spec)
    return Snapshot(runs=_runs(runs, events), publishes=publishes, taken_at=time.time(),
                    clock_offset_s=offset, clock_uncertainty_s=uncertainty, inserts=inserts,
                    backlog_gauge=readings, backlog_sample_s=None if gauges is None else gauges.sample_s)


def _backlog_readings(conn: psycopg.Connection[Any], probe: GaugeProbe) -> tuple[GaugeReading, ...]:
    """Scrape each gauge until it shows the database's value, for at most four sample periods and a
    second: a gauge sampled before the runs settled is stale until its next sample; the rest is slack
    for a sampler running late on a loaded machine (metrics_agree judges three periods)."""
    readings: list[GaugeReading] = []

    def db_value() -> float:
        row = conn.execute(_BACKLOG).fetchone()
        return float(row[0]) if row and row[0] is not None else 0.0

    for url in probe.urls:
        def agrees(url: str = url) -> bool:
            before = db_value()
            value = scrape_metric(url)
            after = db_value()
            readings.append(GaugeReading(url, time.time(), value, before if before == after else None))
            return readings[-1].db_value is not None and value is not None and abs(value - before) <= 1e-6

        try:
            wait_until(agrees, 4 * probe.sample_s + 1.0, f"{GAUGE} at {url} to match the database")
        except WaitTimeout:
            pass  # the readings are the evidence; metrics_agree judges them
    return tuple(readings)


def scrape_metric(url: str, name: str = GAUGE) -> float | None:
    """The value of one unlabelled metric on a /metrics page; None when unreachable or absent."""
    try:
        text = httpx.get(url, timeout=2.0).text
    except httpx.HTTPError:
        return None
    for line in text.splitlines():
        metric, _, value = line.partition(" ")
        if metric == name:
            try:
                return float(value)
            except ValueError:
                return None
    return None


def _clock_offset(conn: psycopg.Connection[Any]) -> tuple[float, float]:
    """Harness wall clock minus PostgreSQL's, from the round trip with the smallest delay: the server
    read its clock somewhere inside the round trip, so the midpoint is off by at most half of it."""
    best: tuple[float, float] | None = None
    for _ in range(CLOCK_SAMPLES):
        sent = time.time()
        row = conn.execute("SELECT clock_timestamp()").fetchone()
        received = time.time()
        db_time = to_epoch(row[0]) if row else None
        if db_time is None:
            continue
        rtt = received - sent
        if best is None or rtt < best[1]:
            best = ((sent + received) / 2 - db_time, rtt)
    if best is None:
        raise PostgresError("observer could not read PostgreSQL's clock")
    return best[0], best[1] / 2


def _runs(runs: list[tuple[Any, ...]], events: list[tuple[Any, ...]]) -> dict[str, RunSnapshot]:
    by_run: dict[str, list[EventRow]] = {}
    status: dict[str, str | None] = {}
    for run_id, seq, type_, ts, published_at, payload in events:
        step = payload.get("step") if isinstance(payload, dict) and type_ == "RunStep" else None
        by_run.setdefault(run_id, []).append(EventRow(
            seq, type_, to_epoch(ts), to_epoch(published_at), payload_digest(payload),
            step if isinstance(step, int) and not isinstance(step, bool) else None))
        if type_ == TERMINAL_TYPE and run_id not in status:
            value = payload.get("status") if isinstance(payload, dict) else None
            status[run_id] = None if value is None else str(value)
    return {rid: RunSnapshot(rid, state, last_seq, next_seq, tuple(by_run.get(rid, ())), status.get(rid))
            for rid, state, last_seq, next_seq in runs}


def _metric_lines(logs_dir: Path | None, run_ids: set[str], spec: LogSpec
                  ) -> tuple[tuple[InsertRecord, ...] | None, tuple[PublishRecord, ...] | None]:
    """The insert and publish lines of these runs only: a shared stack's logs hold other scenarios'
    runs too. None, None: no logs collected, so checks that need them answer unknown."""
    if logs_dir is None:
        return None, None
    lines = read_log_lines(logs_dir, msg=(INSERTED, PUBLISHED), spec=spec)
    inserts = tuple(i for i in inserts_from_log_lines(lines) if i.run_id in run_ids)
    publishes = tuple(p for p in publishes_from_log_lines(lines) if p.run_id in run_ids)
    return inserts, publishes
