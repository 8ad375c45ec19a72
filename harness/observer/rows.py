"""A run's rows as the database has them now, read directly like the snapshot: what scenarios watch
while a fault is on (has the run got under way, is the outbox behind, was the job retaken), never to
judge the run: that is the checkers' job, over the snapshot."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import psycopg

from harness.errors import PostgresError

__all__ = ["JobRow", "RunRow", "job_of", "run_of"]

_RUN = """
SELECT r.state, r.lastSeq, o.nextSeq,
       (SELECT max(seq) FROM run_events e WHERE e.runId = r.id AND e.publishedAt IS NOT NULL),
       (SELECT count(*) FROM run_events e WHERE e.runId = r.id)
FROM runs r LEFT JOIN run_outbox o ON o.runId = r.id WHERE r.id = %s
"""
_JOB = """
SELECT state, attempts, lockedBy, EXTRACT(EPOCH FROM lockedUntil - now())
FROM run_jobs WHERE runId = %s ORDER BY id LIMIT 1
"""


@dataclass(frozen=True)
class RunRow:
    state: str  # queued | started | succeeded | failed | cancelled
    last_seq: int  # the run's lastSeq: events appended so far
    next_seq: int | None  # the outbox cursor (run_outbox.nextSeq); None: no outbox row
    published_max: int | None  # the highest published seq; None: nothing published
    events: int  # rows in run_events (fewer than last_seq: a gap)

    @property
    def backlog(self) -> int | None:
        """The runbook's backlog, ``lastSeq - nextSeq + 1``: appended events the outbox has not passed."""
        return None if self.next_seq is None else self.last_seq - self.next_seq + 1


@dataclass(frozen=True)
class JobRow:
    state: str  # queued | running | done
    attempts: int  # claims so far: 2 or more means the job was retaken
    locked_by: str | None
    lease_left_s: float | None  # lockedUntil minus the database's now(); negative once the lease expired


def _one(dsn: str, sql: str, run_id: str, what: str) -> tuple[Any, ...] | None:
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql, (run_id,)).fetchone()
    except psycopg.Error as exc:
        raise PostgresError(f"could not read {what} at {dsn}: {exc}") from exc


def run_of(dsn: str, run_id: str) -> RunRow | None:
    """The run's row with its outbox cursor; None when there is no such run."""
    row = _one(dsn, _RUN, run_id, "runs")
    if row is None:
        return None
    state, last_seq, next_seq, published, events = row
    return RunRow(state, int(last_seq), None if next_seq is None else int(next_seq),
                  None if published is None else int(published), int(events))


def job_of(dsn: str, run_id: str) -> JobRow | None:
    """The run's job (`run_jobs`); None when the run has no job."""
    row = _one(dsn, _JOB, run_id, "run_jobs")
    if row is None:
        return None
    state, attempts, locked_by, left = row
    return JobRow(state, attempts, locked_by, None if left is None else float(left))
