"""Resetting the service's data between tests: fast, bounded, never hanging on a lock."""

from __future__ import annotations

import psycopg

from harness.errors import PostgresError

__all__ = ["SERVICE_TABLES", "truncate_service_tables"]

SERVICE_TABLES = ("runs", "run_events", "run_outbox", "run_jobs")


def truncate_service_tables(dsn: str, lock_timeout_ms: int = 2000, attempts: int = 5) -> None:
    """TRUNCATE needs an exclusive lock: a bounded lock wait, retried, so a worker mid-transaction
    delays the test a little instead of hanging it. A deadlock with a worker's transaction (the tables
    are locked in another order than the service's) is retried the same way: PostgreSQL aborted us."""
    last: Exception | None = None
    for _ in range(attempts):
        try:
            with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
                conn.execute(f"SET lock_timeout = {int(lock_timeout_ms)}")
                rows = conn.execute("SELECT t FROM unnest(%s::text[]) AS t WHERE to_regclass(t) IS NOT NULL",
                                    (list(SERVICE_TABLES),)).fetchall()
                present = [row[0] for row in rows]  # a service that is not migrated yet has none
                if present:
                    conn.execute(f"TRUNCATE {', '.join(present)} RESTART IDENTITY CASCADE")
                return
        except (psycopg.errors.LockNotAvailable, psycopg.errors.DeadlockDetected) as exc:
            last = exc
        except psycopg.Error as exc:
            raise PostgresError(f"could not truncate the service tables at {dsn}: {exc}") from exc
    raise PostgresError(f"TRUNCATE of {SERVICE_TABLES} kept waiting for locks or deadlocking "
                        f"({attempts} x {lock_timeout_ms} ms)") from last
