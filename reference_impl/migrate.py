"""`python -m reference_impl migrate`: create the schema idempotently.

An advisory lock serialises concurrent migrates (several replicas may start at once): without it,
two `CREATE TABLE IF NOT EXISTS` can still race on the catalog and one fails.
"""

from __future__ import annotations

import asyncio
import time
from importlib import resources

import psycopg

from . import db
from .config import Config
from .logs import Logger

__all__ = ["migrate", "schema_sql"]

_LOCK_KEY = 0x4D34_5245_4600  # arbitrary constant shared by every migrate of this schema
_CONNECT_DEADLINE_S = 15.0
_log = Logger("migrate")


def schema_sql() -> str:
    return resources.files(__package__).joinpath("schema.sql").read_text(encoding="utf-8")


async def _connect_with_retry(config: Config) -> psycopg.AsyncConnection[object]:
    """The database may still be starting: retry for a bounded time, then give up with the cause."""
    deadline = time.monotonic() + _CONNECT_DEADLINE_S
    backoff = db.Backoff(0.1, 1.0)
    while True:
        try:
            return await db.connect(config, autocommit=False)
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise
            await backoff.sleep()


async def migrate(config: Config) -> None:
    conn = await _connect_with_retry(config)
    async with conn:
        async with conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK_KEY,))
            await conn.execute(schema_sql().encode())
    _log.info("migrate.done")


def run(config: Config) -> int:
    asyncio.run(migrate(config))
    return 0
