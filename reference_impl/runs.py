"""Run repository of the API: create, read, and the stream's queries over run_events."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
from psycopg.types.json import Jsonb

from .events import TERMINAL_STATES, Event

__all__ = ["RunRow", "StreamStatus", "create_run", "get_run", "read_published", "read_range", "stream_status"]

# One statement, one transaction: the run, its outbox cursor and (optionally) its job exist
# together or not at all; the job's NOTIFY is delivered only when the insert commits.
_CREATE = """
WITH r AS (INSERT INTO runs (id) VALUES (%(id)s) RETURNING id),
o AS (INSERT INTO run_outbox (runId) SELECT id FROM r),
j AS (INSERT INTO run_jobs (runId, script) SELECT id, %(script)s FROM r WHERE %(job)s RETURNING id, runId)
SELECT j.id, pg_notify('run_jobs_wake', j.runId) FROM j
"""
_STATUS = """
SELECT r.state, r.lastSeq, o.nextSeq,
       EXISTS (SELECT 1 FROM run_events e
               WHERE e.runId = r.id AND e.seq > %(cursor)s AND e.publishedAt IS NOT NULL)
FROM runs r LEFT JOIN run_outbox o ON o.runId = r.id WHERE r.id = %(run)s
"""
_EVENT_COLUMNS = "SELECT seq, type, payload, ts FROM run_events WHERE runId = %(run)s AND seq > %(after)s"
_PUBLISHED = _EVENT_COLUMNS + " AND publishedAt IS NOT NULL ORDER BY seq LIMIT %(limit)s"
_RANGE = _EVENT_COLUMNS + " AND seq <= %(upto)s ORDER BY seq"

Conn = psycopg.AsyncConnection[Any]


@dataclass(frozen=True)
class RunRow:
    id: str
    state: str
    started_at: datetime | None
    finished_at: datetime | None
    last_seq: int


@dataclass(frozen=True)
class StreamStatus:
    state: str
    last_seq: int
    next_seq: int | None  # None: the run_outbox row was deleted (runbook's last resort)
    published_after_cursor: bool

    def finished_for(self, cursor: int) -> bool:
        """Nothing more will ever be sent past `cursor`: answer 204 / close the stream.

        True when the run is terminal and either the cursor is at or past lastSeq, or no published
        event is left after it while the outbox cannot publish more (its row is gone or caught up)
        - the runbook's hand cancellation ends without a RunFinished event.
        """
        if self.state not in TERMINAL_STATES:
            return False
        if cursor >= self.last_seq:
            return True
        outbox_done = self.next_seq is None or self.next_seq > self.last_seq
        return outbox_done and not self.published_after_cursor


async def create_run(conn: Conn, script: dict[str, Any], *, with_job: bool = True) -> str:
    run_id = str(uuid.uuid4())
    async with conn.transaction():
        await conn.execute(_CREATE, {"id": run_id, "script": Jsonb(script), "job": with_job})
    return run_id


async def get_run(conn: Conn, run_id: str) -> RunRow | None:
    cur = await conn.execute(
        "SELECT id, state, startedAt, finishedAt, lastSeq FROM runs WHERE id = %s", (run_id,))
    row = await cur.fetchone()
    return None if row is None else RunRow(*row)


async def stream_status(conn: Conn, run_id: str, cursor: int) -> StreamStatus | None:
    cur = await conn.execute(_STATUS, {"run": run_id, "cursor": cursor})
    row = await cur.fetchone()
    return None if row is None else StreamStatus(*row)


async def read_published(conn: Conn, run_id: str, after: int, limit: int) -> list[Event]:
    """Backfill: published events with seq > after, in order (never an unpublished one)."""
    cur = await conn.execute(_PUBLISHED, {"run": run_id, "after": after, "limit": limit})
    rows = await cur.fetchall()
    return [Event(run_id, seq, kind, payload, ts) for seq, kind, payload, ts in rows]


async def read_range(conn: Conn, run_id: str, after: int, upto: int) -> list[Event]:
    """Fill: events after < seq <= upto, published or not (the live bus already published them)."""
    cur = await conn.execute(_RANGE, {"run": run_id, "after": after, "upto": upto})
    rows = await cur.fetchall()
    return [Event(run_id, seq, kind, payload, ts) for seq, kind, payload, ts in rows]
