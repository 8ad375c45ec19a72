"""The runbook's outbox backlog as a gauge, so its alert rule can be the runbook's own condition:
AVG(runs.lastSeq - run_outbox.nextSeq) over started runs, sampled by each outbox worker every
BACKLOG_SAMPLE_MS on a connection of its own (a sample never waits behind a publishing transaction)."""

from __future__ import annotations

import asyncio
from typing import Any

import psycopg

from . import db, metrics
from .config import Config

__all__ = ["sample_backlog"]

_AVG_BACKLOG = """
SELECT coalesce(avg(r.lastSeq - o.nextSeq), 0)::float8
FROM run_outbox o JOIN runs r ON r.id = o.runId
WHERE r.state = 'started'
"""


async def sample_backlog(config: Config, stop: asyncio.Event) -> None:
    conn: psycopg.AsyncConnection[Any] | None = None
    while not stop.is_set():
        try:
            conn = conn if conn is not None and not conn.closed else await db.connect(config)
            row = await (await conn.execute(_AVG_BACKLOG)).fetchone()
            metrics.OUTBOX_BACKLOG_AVG.set(row[0] if row else 0.0)
        except (psycopg.Error, OSError):
            conn = None  # the database is away: keep the last sample, try again next tick
        try:
            await asyncio.wait_for(stop.wait(), config.backlog_sample_ms / 1000)
        except TimeoutError:
            pass
    if conn is not None:
        await conn.close()
