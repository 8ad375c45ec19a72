"""Database faults, run through the harness's direct DSN (never through a proxy).

- `terminated_backends`: `pg_terminate_backend` of the service's sessions. The reference service sets
  `application_name` to its `SERVICE_NAME`, which the harness sets to the process name (`api-0`,
  `outbox-worker-0`, ...; see reference_impl/db.py `conninfo`). A target selects client backends
  (`backend_type = 'client backend'`, never our own `pg_backend_pid()`) whose application_name is the
  target or starts with `<target>-` (`api` matches every API replica), or whose role (`usename`) is the
  target. `*` selects every other client backend of the database, for a service that sets no name. On
  a target doing every role in one process a role's name (`outbox-worker`) selects the `all` processes'
  sessions, and the window names `all` (process_faults.hit).
- `locked_outbox`: a session holding `SELECT ... FROM run_outbox ... FOR UPDATE` on one run's row (or
  every row present at entry) for the block. Outbox workers claim with `FOR UPDATE SKIP LOCKED`, so the
  locked runs are not published until the block exits (rollback + close).
- `removed_event`: one event row deleted, for good: the seq gap of the runbook's "Run Stuck" step 4 (an
  append bug), which the outbox must stop at and alert on, never skip.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg

from harness.errors import PostgresError
from harness.history import History
from harness.nemesis.process_faults import hit
from harness.stack import LocalStack

__all__ = ["locked_outbox", "removed_event", "terminate_backends", "terminated_backends"]

_TERMINATE = """
SELECT pid, application_name, pg_terminate_backend(pid) FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname = current_database()
  AND (%(t)s = '*' OR application_name = %(t)s OR starts_with(application_name, %(t)s || '-')
       OR usename = %(t)s)
ORDER BY pid
"""
_DELETE = "DELETE FROM run_events WHERE runId = %(run)s AND seq = %(seq)s RETURNING seq"
_LOCK = "SELECT runId FROM run_outbox WHERE %(run)s::text IS NULL OR runId = %(run)s ORDER BY runId FOR UPDATE"


def terminate_backends(dsn: str, target: str) -> list[int]:
    """Terminate the selected sessions now; returns their pids (empty: nothing matched)."""
    try:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5, application_name="harness-nemesis") as conn:
            rows = conn.execute(_TERMINATE, {"t": target}).fetchall()
    except psycopg.Error as exc:
        raise PostgresError(f"pg_terminate_backend of {target!r} sessions failed: {exc}") from exc
    return [int(row[0]) for row in rows]


@contextmanager
def terminated_backends(stack: LocalStack, history: History, application_name_or_role: str) -> Iterator[list[int]]:
    """Terminate the service's sessions on entry (see the module doc for the selection); the window
    lasts for the block, during which the service is expected to reconnect by itself."""
    real, params = hit(stack, application_name_or_role)  # `outbox-worker` on an `all` target: its sessions
    pids = terminate_backends(stack.info.dsn, real)
    with history.fault("terminate_backends", real, {"pids": pids, **params}):
        yield pids


@contextmanager
def locked_outbox(stack: LocalStack, history: History, run_id: str | None = None,
                  lock_timeout_ms: int = 5000) -> Iterator[list[str]]:
    """Hold the outbox row(s) of `run_id` (None: every row present now) locked for the block; yields the
    locked run ids. Released on exit, also on error."""
    try:
        conn = psycopg.connect(stack.info.dsn, connect_timeout=5, application_name="harness-nemesis",
                               options=f"-c lock_timeout={int(lock_timeout_ms)}")
    except psycopg.Error as exc:
        raise PostgresError(f"could not connect to lock run_outbox: {exc}") from exc
    try:
        try:
            locked = [str(r[0]) for r in conn.execute(_LOCK, {"run": run_id}).fetchall()]
        except psycopg.Error as exc:
            raise PostgresError(f"could not lock run_outbox rows of {run_id or 'every run'}: {exc}") from exc
        with history.fault("lock_outbox", run_id or "*", {"runs": locked}):
            yield locked
    finally:
        try:
            conn.rollback()
        finally:
            conn.close()


def removed_event(stack: LocalStack, history: History, run_id: str, seq: int) -> None:
    """Delete the run's event at `seq` now; recorded as an instant fault window (the gap stays)."""
    try:
        with psycopg.connect(stack.info.dsn, autocommit=True, connect_timeout=5,
                             application_name="harness-nemesis") as conn:
            deleted = conn.execute(_DELETE, {"run": run_id, "seq": seq}).fetchone()
    except psycopg.Error as exc:
        raise PostgresError(f"could not delete event {seq} of run {run_id}: {exc}") from exc
    if deleted is None:
        raise PostgresError(f"run {run_id} has no event {seq} to delete")
    with history.fault("remove_event", run_id, {"seq": seq}):
        pass
