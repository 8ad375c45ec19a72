"""PostgreSQL access: connection settings, the pool, and what counts as an outage.

PostgreSQL is restarted and connections are terminated under the service by chaos tests, so:
pooled connections are checked on checkout (a dead one is replaced instead of failing a request),
connects are bounded, TCP keepalives are on, and errors meaning "the database is unreachable" are
one exception type that the API answers with 503.
"""

from __future__ import annotations

import asyncio
import random
import select
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout
from psycopg_pool.base import AttemptWithBackoff  # not re-exported; see _CappedAttempt

from .config import Config

__all__ = ["Backoff", "Unavailable", "connect", "conninfo", "is_outage", "make_pool"]

POOL_TIMEOUT_S = 3.0
RECONNECT_DELAY_CAP_S = 1.0  # how long a request waits for a connection before answering 503

_DEFAULTS = {
    "connect_timeout": "3",
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "3",
    "keepalives_count": "3",
}


class Unavailable(RuntimeError):
    """The database cannot be reached right now (answered with 503; workers retry)."""


def conninfo(config: Config) -> str:
    """The DSN plus our defaults for settings the DSN leaves unset."""
    given = conninfo_to_dict(config.database_url)
    extra = {k: v for k, v in _DEFAULTS.items() if k not in given}
    extra.setdefault("application_name", config.service_name)
    return make_conninfo(config.database_url, **extra)


def is_outage(exc: BaseException) -> bool:
    """True for errors of an unreachable database, as opposed to a bug or bad data."""
    return isinstance(exc, (psycopg.OperationalError, PoolTimeout, psycopg.InterfaceError, Unavailable))


async def connect(config: Config, *, autocommit: bool = True, **params: str) -> psycopg.AsyncConnection[Any]:
    """A dedicated connection; `params` are libpq parameters such as `options`."""
    return await psycopg.AsyncConnection.connect(make_conninfo(conninfo(config), **params), autocommit=autocommit)


class _CappedAttempt(AttemptWithBackoff):
    """psycopg_pool doubles its reconnect delay without bound (after a 10 minute outage it waits
    ~8 minutes more); chaos tests restart PostgreSQL and expect recovery within seconds."""

    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_DELAY_CAP_S)


class Pool(AsyncConnectionPool):
    """AsyncConnectionPool whose reconnect attempts retry at least every RECONNECT_DELAY_CAP_S."""

    async def _add_connection(self, attempt: AttemptWithBackoff | None, growing: bool = False) -> None:
        await super()._add_connection(attempt or _CappedAttempt(timeout=self.reconnect_timeout), growing)


def make_pool(config: Config, *, max_size: int | None = None) -> AsyncConnectionPool:
    """An unopened pool; open it with `await pool.open(wait=False)` so startup survives an outage."""
    size = max_size or config.db_pool_max
    return Pool(
        conninfo(config),
        # autocommit: reads are one round trip; writes open `conn.transaction()` explicitly.
        kwargs={"autocommit": True},
        min_size=min(2, size),
        max_size=size,
        open=False,
        timeout=POOL_TIMEOUT_S,
        check=check_idle_connection,  # replaces connections killed by a PG restart
        reconnect_timeout=3600.0,  # keep trying for an hour rather than giving up on the server
        max_idle=60.0,
        name=config.service_name,
    )


async def check_idle_connection(conn: psycopg.AsyncConnection[Any]) -> None:
    """Pool checkout check that costs no round trip on a healthy connection.

    An idle connection has nothing to read. If its socket is readable, the server (or a proxy) has
    sent an error or closed it - e.g. a PostgreSQL restart - and only then is it pinged, so that
    the pool replaces it instead of handing a dead connection to a request.
    """
    if conn.closed:
        raise psycopg.OperationalError("connection is closed")
    readable, _, _ = select.select([conn.pgconn.socket], [], [], 0)
    if readable:
        await AsyncConnectionPool.check_connection(conn)


class Backoff:
    """Exponential backoff with jitter for reconnect loops (50 ms doubling to 2 s)."""

    def __init__(self, first: float = 0.05, cap: float = 2.0) -> None:
        self._first, self._cap, self._next = first, cap, first

    def reset(self) -> None:
        self._next = self._first

    async def sleep(self) -> None:
        delay = self._next * (0.5 + random.random() / 2)
        self._next = min(self._cap, self._next * 2)
        await asyncio.sleep(delay)
