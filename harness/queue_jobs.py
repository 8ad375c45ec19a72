"""The queue's job rows (`run_jobs`), read directly like the observer: how often a run's job was claimed,
whether its lease has run out and who holds it. Fault scenarios read them to prove that their fault hit
a job in flight (its lease expired, it was retaken), never to judge the run: that is the checkers' job."""
from __future__ import annotations

from dataclasses import dataclass

import psycopg

from harness.errors import PostgresError

__all__ = ["JobRow", "job_of"]

_JOB = """
SELECT state, attempts, lockedBy, EXTRACT(EPOCH FROM lockedUntil - now())
FROM run_jobs WHERE runId = %s ORDER BY id LIMIT 1
"""


@dataclass(frozen=True)
class JobRow:
    state: str  # queued | running | done
    attempts: int  # claims so far: 2 or more means the job was retaken
    locked_by: str | None
    lease_left_s: float | None  # lockedUntil minus the database's now(); negative once the lease expired


def job_of(dsn: str, run_id: str) -> JobRow | None:
    """The run's job as the database has it now; None when the run has no job."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(_JOB, (run_id,)).fetchone()
    except psycopg.Error as exc:
        raise PostgresError(f"could not read run_jobs at {dsn}: {exc}") from exc
    if row is None:
        return None
    state, attempts, locked_by, left = row
    return JobRow(state, attempts, locked_by, None if left is None else float(left))
