"""Append to a run's event log: gapless per-run seq, terminal guard, outbox wake-up.

The seq comes from `UPDATE runs SET lastSeq = lastSeq + 1 ... RETURNING` under the run's row lock,
in the same transaction as the INSERT: a rolled-back append releases its seq (a sequence object
would leave a gap forever), and concurrent appends to one run serialise on the row lock.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from . import metrics
from .events import OUTCOMES, TERMINAL_STATES, TERMINAL_TYPE
from .failpoints import failpoint, registry
from .logs import Logger

__all__ = ["Appended", "RunNotFound", "TerminalRun", "append", "terminal_state"]

_log = Logger("run-event-repo")

# One round trip: allocate the seq, insert the row, wake the outbox (pg_notify is delivered on commit).
_APPEND = """
WITH r AS (
    UPDATE runs SET
        lastSeq = lastSeq + 1,
        state = CASE WHEN %(final)s::text IS NOT NULL THEN %(final)s::text
                     WHEN state = 'queued' THEN 'started' ELSE state END,
        startedAt = COALESCE(startedAt, now()),
        finishedAt = CASE WHEN %(final)s::text IS NOT NULL THEN now() ELSE finishedAt END
    WHERE id = %(run)s AND state NOT IN ('succeeded', 'failed', 'cancelled')
    RETURNING id, lastSeq
)
INSERT INTO run_events (runId, seq, type, payload)
SELECT id, lastSeq, %(type)s, %(payload)s FROM r
RETURNING seq, ts, pg_notify('run_outbox_wake', runId)
"""

Guard = Callable[[psycopg.AsyncConnection[Any]], Awaitable[None]]


class RunNotFound(LookupError):
    def __init__(self, run_id: str) -> None:
        super().__init__(f"run {run_id} not found")


class TerminalRun(RuntimeError):
    """An append after the run's terminal state (runbook pattern 1)."""

    def __init__(self, run_id: str, state: str, last_seq: int) -> None:
        super().__init__(f"Non-monotonic seq append: run {run_id} is already {state} (lastSeq {last_seq})")
        self.state = state
        self.last_seq = last_seq


@dataclass(frozen=True)
class Appended:
    run_id: str
    seq: int
    type: str
    ts: datetime


def terminal_state(event_type: str, payload: Any) -> str | None:
    """The run state a RunFinished sets (its payload's status, default succeeded); None otherwise."""
    if event_type != TERMINAL_TYPE:
        return None
    status = payload.get("status") if isinstance(payload, dict) else None
    return status if status in OUTCOMES else "succeeded"


async def append(conn: psycopg.AsyncConnection[Any], run_id: str, event_type: str, payload: Any,
                 *, guard: Guard | None = None) -> Appended:
    """Append one event in one transaction; raises RunNotFound or TerminalRun.

    `conn` must be in autocommit mode (the pool's connections are). Without a guard or an armed
    `append.before_commit`, the append is one statement, i.e. one implicit transaction and one
    round trip; otherwise an explicit transaction wraps the guard, the statement and the failpoint.
    """
    params = {"run": run_id, "type": event_type, "payload": Jsonb(payload),
              "final": terminal_state(event_type, payload)}
    if guard is None and not registry.is_armed("append.before_commit"):
        row = await _append_row(conn, params)
    else:
        async with conn.transaction():
            if guard is not None:
                await guard(conn)  # e.g. the queue worker's lease check, fenced in this transaction
            row = await _append_row(conn, params)
            await failpoint("append.before_commit")
    _inserted(run_id, row[0], event_type)
    return Appended(run_id, row[0], event_type, row[1])


async def _append_row(conn: psycopg.AsyncConnection[Any], params: dict[str, Any]) -> tuple[int, datetime]:
    cur = await conn.execute(_APPEND, params)
    row = await cur.fetchone()
    if row is None:
        await _raise_refusal(conn, params["run"])
    assert row is not None
    return row[0], row[1]


async def _raise_refusal(conn: psycopg.AsyncConnection[Any], run_id: str) -> None:
    cur = await conn.execute("SELECT state, lastSeq FROM runs WHERE id = %s", (run_id,))
    found = await cur.fetchone()
    if found is None:
        raise RunNotFound(run_id)
    if found[0] in TERMINAL_STATES:
        raise TerminalRun(run_id, found[0], found[1])
    raise RuntimeError(f"append to run {run_id} refused in state {found[0]}")  # not reachable by design


def _inserted(run_id: str, seq: int, event_type: str) -> None:
    metrics.EVENTS_INSERTED.labels(metrics.type_label(event_type)).inc()
    _log.info("metric.events_inserted", run_id, seq=seq, type=event_type)
