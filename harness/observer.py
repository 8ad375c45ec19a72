"""The harness's observer: reads the database directly (never through a proxy) and the service's logs
into the plain-data `Snapshot` the checkers judge. The only place where checks meet I/O."""
from __future__ import annotations

import time
from collections.abc import Iterable
from pathlib import Path

import psycopg

from harness.checks.snapshot import EventRow, PublishRecord, RunSnapshot, Snapshot, publishes_from_log_lines, to_epoch
from harness.errors import PostgresError
from harness.stack.waiting import wait_until

_RUNS = """
SELECT r.id, r.state, r.lastSeq, o.nextSeq
FROM runs r LEFT JOIN run_outbox o ON o.runId = r.id
WHERE r.id = ANY(%s)
"""
_EVENTS = "SELECT runId, seq, type, ts, publishedAt FROM run_events WHERE runId = ANY(%s) ORDER BY runId, seq"


def take_snapshot(dsn: str, run_ids: Iterable[str], logs_dir: Path | None = None) -> Snapshot:
    ids = sorted(set(run_ids))
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=10) as conn:
            runs = conn.execute(_RUNS, (ids,)).fetchall()
            events = conn.execute(_EVENTS, (ids,)).fetchall()
    except psycopg.Error as exc:
        raise PostgresError(f"observer could not read the database at {dsn}: {exc}") from exc
    return Snapshot(runs=_runs(runs, events), publishes=_publishes(logs_dir, set(ids)), taken_at=time.time())


def _runs(runs: list[tuple], events: list[tuple]) -> dict[str, RunSnapshot]:
    by_run: dict[str, list[EventRow]] = {}
    for run_id, seq, type_, ts, published_at in events:
        by_run.setdefault(run_id, []).append(EventRow(seq, type_, to_epoch(ts), to_epoch(published_at)))
    return {rid: RunSnapshot(rid, state, last_seq, next_seq, tuple(by_run.get(rid, ())))
            for rid, state, last_seq, next_seq in runs}


def _publishes(logs_dir: Path | None, run_ids: set[str]) -> tuple[PublishRecord, ...] | None:
    """The publish records of these runs only: a shared stack's logs hold other scenarios' runs too."""
    if logs_dir is None:
        return None  # no logs collected: checks that need publish times answer unknown
    lines = (line for path in sorted(logs_dir.glob("*.log")) for line in path.read_text(errors="replace").splitlines())
    return tuple(p for p in publishes_from_log_lines(lines) if p.run_id in run_ids)


_CONVERGED = """
SELECT count(*) FROM runs r JOIN run_outbox o ON o.runId = r.id
WHERE r.id = ANY(%s) AND o.nextSeq = r.lastSeq + 1
  AND NOT EXISTS (SELECT 1 FROM run_events e WHERE e.runId = r.id AND e.publishedAt IS NULL)
"""


def wait_for_outbox(dsn: str, run_ids: Iterable[str], timeout: float = 30.0) -> None:
    """Wait until the outbox has published and marked every event of these runs (invariant 6's bound)."""
    ids = sorted(set(run_ids))

    def converged() -> bool:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(_CONVERGED, (ids,)).fetchone()
        return row is not None and row[0] == len(ids)

    wait_until(converged, timeout, f"outbox to converge for {len(ids)} run(s)")
