"""A dedicated LISTEN connection that survives PostgreSQL restarts and silent network faults.

A connection behind a faulted proxy can stay "open" while delivering nothing, and TCP keepalives
only reach the proxy, so the listener pings with `SELECT 1` between bursts of notifications and
reconnects (with backoff) when the ping fails or times out. Notifications that arrive during the
ping are kept by psycopg and returned by the next `notifies()` call.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import psycopg

from . import db, metrics
from .config import Config
from .logs import Logger

__all__ = ["Listener"]

PING_EVERY_S = 2.0
PING_TIMEOUT_S = 2.0


class Listener:
    """Calls on_notify(channel, payload) per notification and on_connect() after every (re)connect.

    on_connect runs once LISTEN is in place, so a consumer that resyncs there misses nothing.
    """

    def __init__(self, config: Config, channels: Sequence[str], on_notify: Callable[[str, str], None],
                 on_connect: Callable[[], None], component: str) -> None:
        self._config = config
        self._channels = tuple(channels)
        self._on_notify = on_notify
        self._on_connect = on_connect
        self._log = Logger(component)
        self.connected = False

    async def run(self) -> None:
        backoff = db.Backoff()
        while True:
            try:
                await self._session(backoff)
            except (psycopg.Error, OSError, TimeoutError) as exc:
                self._log.warn("listen.error", channels=list(self._channels), error=str(exc) or repr(exc))
            self.connected = False
            metrics.BUS_RECONNECTS.labels(",".join(self._channels)).inc()
            await backoff.sleep()

    async def _session(self, backoff: db.Backoff) -> None:
        conn = await db.connect(self._config)
        try:
            for channel in self._channels:
                await conn.execute(f"LISTEN {channel}")  # channel names are our constants
            self.connected = True
            backoff.reset()
            self._on_connect()
            await self._pump(conn)
        finally:
            self.connected = False
            await _close_quietly(conn)

    async def _pump(self, conn: psycopg.AsyncConnection[Any]) -> None:
        while True:
            async for note in conn.notifies(timeout=PING_EVERY_S):
                self._on_notify(note.channel, note.payload)
            async with asyncio.timeout(PING_TIMEOUT_S):
                await conn.execute("SELECT 1")


async def _close_quietly(conn: psycopg.AsyncConnection[Any]) -> None:
    try:
        await asyncio.wait_for(conn.close(), 1.0)
    except Exception:  # closing a broken connection may fail; we are discarding it anyway
        pass
