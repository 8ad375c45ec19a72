"""The nearest real fault for a failpoint crash the target cannot place: SIGKILL, while events are in
flight, of the process carrying the failpoint's role.

Without failpoints (`/admin/failpoints`) no one can put a crash exactly between a publish and its mark.
What every target allows is a SIGKILL of the process doing that role (on an `all` target, the whole
process) while work is in flight: once an event written since the fault was armed has been published
and its run's stream is not over (its `RunFinished` not yet published), mid-stream. The process stays dead, as after the crash it
stands for, until the scenario restarts it. The window is a `kill` of the process really hit whose params
say what it replaces (`replaces`: `failpoint:outbox.after_publish=1*crash`), what it was asked for (`for`)
and when it fired (`killed_at`, wall clock; None: nothing was in flight). The kill lands anywhere in the
outbox's cycle: the crash's invariants still judge the run, the failpoint's exact place is not promised.
"""
from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import psycopg

from harness.errors import PostgresError
from harness.history import FaultWindow, History
from harness.nemesis.process_faults import hit
from harness.stack import LocalStack

__all__ = ["REPLACES", "killed_in_flight", "stand_ins"]

REPLACES = "replaces"  # the window param naming the failpoint a kill stands in for
POLL_S = 0.01
_IN_FLIGHT = """
SELECT EXISTS (SELECT 1 FROM run_events e WHERE e.ts >= %(since)s AND e.publishedAt IS NOT NULL AND NOT EXISTS (
  SELECT 1 FROM run_events f WHERE f.runId = e.runId AND f.type = 'RunFinished' AND f.publishedAt IS NOT NULL))
"""


@contextmanager
def killed_in_flight(stack: LocalStack, history: History, process: str, failpoint: str, action: str) -> Iterator[None]:
    """For the block, watch the database (direct DSN) and SIGKILL `process`'s carrier once events are in
    flight; not restarted here. A database error of the watch is raised on exit."""
    real, params = hit(stack, process)
    victim = stack.process(real)
    window: dict[str, Any] = {**params, REPLACES: f"failpoint:{failpoint}={action}", "killed_at": None}
    errors: list[psycopg.Error] = []
    stop = threading.Event()
    try:
        conn = psycopg.connect(stack.info.dsn, autocommit=True, connect_timeout=5, application_name="harness-nemesis")
        since = conn.execute("SELECT now()").fetchone()
    except psycopg.Error as exc:
        raise PostgresError(f"could not connect to watch for events in flight: {exc}") from exc

    def watch() -> None:
        try:
            while not stop.wait(POLL_S):
                row = conn.execute(_IN_FLIGHT, {"since": since[0] if since else None}).fetchone()
                if row is not None and row[0]:
                    victim.kill()
                    window["killed_at"] = history.wall()
                    return
        except psycopg.Error as exc:
            errors.append(exc)

    watcher = threading.Thread(target=watch, name=f"kill-in-flight:{real}", daemon=True)
    with conn, history.fault("kill", real, window):
        watcher.start()
        try:
            yield
        finally:
            stop.set()
            watcher.join()
    if errors:
        raise PostgresError(f"watching for events in flight failed: {errors[0]}")


def stand_ins(history: History) -> str:
    """The history's stand-ins, for a report: `kill all-0 (for outbox-worker-0) replaces failpoint:...=1*crash`."""
    return "; ".join(f"{w.name} {w.target}{' (for ' + w.params['for'] + ')' if 'for' in w.params else ''}"
                     f" replaces {w.params[REPLACES]}{'' if w.params.get('killed_at') else ' (nothing was in flight)'}"
                     for w in history if isinstance(w, FaultWindow) and REPLACES in w.params)
