"""GET /api/agents/runs/{runId}/stream: backfill published events, then follow the live bus.

Order matters: subscribe to the bus FIRST, then backfill `seq > cursor AND publishedAt IS NOT NULL`,
then follow. Live events with seq <= lastSentSeq are dropped (already sent by the backfill); a live
seq that skips ahead is filled from the DB by seq range (the outbox publishes in order, so the lower
seqs are published). On a bus reconnect (RESYNC) the stream re-backfills from lastSentSeq. An idle
stream sends a heartbeat comment every HEARTBEAT_MS and then re-checks the DB as a safety net,
which is also how a run cancelled by hand (terminal state, no RunFinished event) ends its streams.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

from psycopg_pool import AsyncConnectionPool

from . import db, metrics, runs
from .bus import RESYNC, Bus, Item, LiveEvent, Subscription
from .config import Config
from .cursor import Cursor
from .events import TERMINAL_TYPE, Event
from .failpoints import failpoint
from .logs import Logger
from .sse_framing import HEARTBEAT, event_frame, retry_frame

__all__ = ["RunStream", "StreamDeps"]

PAGE = 500  # backfill page size: a long run is streamed in pages, never loaded whole
# After each backfill, re-check the DB shortly: events published before we subscribed but marked
# only after our backfill read are otherwise found at the next heartbeat.
RECHECK_AFTER_BACKFILL_S = (0.2, 1.0)
_log = Logger("stream-run")
T = TypeVar("T")


@dataclass(frozen=True)
class StreamDeps:
    config: Config
    pool: AsyncConnectionPool
    bus: Bus
    shutdown: asyncio.Event


class _Finished(Exception):
    """Raised inside the stream to end it with a reason."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class RunStream:
    """One SSE connection. `open()` subscribes; `frames()` yields bytes; `close()` releases."""

    def __init__(self, deps: StreamDeps, run_id: str, cursor: Cursor) -> None:
        self._deps = deps
        self.run_id = run_id
        self.cursor = cursor
        self.last_sent = cursor.value
        self.connection_id = uuid.uuid4().hex[:16]
        self.reason = "open"
        self._sub: Subscription | None = None
        self._last_write = time.monotonic()
        self._rechecks: list[float] = []
        self._terminal_sent = False
        self._timer: asyncio.TimerHandle | None = None
        self._timer_at = 0.0

    # -- lifecycle -----------------------------------------------------------------------------

    def open(self) -> Subscription:
        self._sub = self._deps.bus.subscribe(self.run_id)
        metrics.STREAMS_OPEN.inc()
        metrics.STREAM_CONNECTS.labels("resume" if self.cursor.is_resume else "fresh").inc()
        _log.info("stream-run", self.run_id, fromSeq=_int_or_none(self.cursor.from_seq),
                  lastEventId=_int_or_none(self.cursor.last_event_id), cursor=self.cursor.value,
                  connectionId=self.connection_id)
        return self._sub

    def close(self, response_reason: str) -> None:
        if self._sub is None:
            return
        if self._timer is not None:
            self._timer.cancel()
        self._sub.close()
        self._sub = None
        reason = self.reason if response_reason == "end" else response_reason
        metrics.STREAMS_OPEN.dec()
        metrics.STREAM_CLOSES.labels(reason).inc()
        _log.info("stream-run.closed", self.run_id, connectionId=self.connection_id,
                  lastSentSeq=self.last_sent, reason=reason)

    # -- the frames ----------------------------------------------------------------------------

    async def frames(self) -> AsyncIterator[bytes]:
        """Everything to write; ends after the chunk that carries RunFinished."""
        try:
            async for chunk in self._chunks():
                yield chunk
                if self._terminal_sent:
                    self.reason = "terminal"
                    return
        except _Finished as done:
            self.reason = done.reason

    async def _chunks(self) -> AsyncIterator[bytes]:
        if self._deps.config.sse_retry_ms is not None:
            yield self._wrote(retry_frame(self._deps.config.sse_retry_ms))
        await failpoint("stream.after_subscribe")
        async for chunk in self._backfill():
            yield chunk
        await failpoint("stream.after_backfill")
        async for chunk in self._follow():
            yield chunk

    async def _backfill(self) -> AsyncIterator[bytes]:
        """Published events after last_sent, page by page; schedules the post-backfill rechecks."""
        while True:
            events = await self._db(runs.read_published, self.last_sent, PAGE)
            if events:
                yield self._send(events)
            if len(events) < PAGE or self._terminal_sent:
                break
        now = time.monotonic()
        self._rechecks = [now + delay for delay in RECHECK_AFTER_BACKFILL_S]

    async def _follow(self) -> AsyncIterator[bytes]:
        assert self._sub is not None
        while True:
            item = await self._next(self._sub)
            if item is None:
                async for chunk in self._idle():
                    yield chunk
                continue
            out = bytearray()
            while item is not None and not self._terminal_sent:  # coalesce what is queued into one write
                out += await self._on_item(item)
                item = self._sub.get_nowait()
            if out:
                yield bytes(out)

    async def _next(self, sub: Subscription) -> Item | None:
        """The next bus item, or None when the heartbeat or a recheck is due."""
        while True:
            item = sub.get_nowait()
            if item is not None:
                return item
            deadline = self._last_write + self._deps.config.heartbeat_ms / 1000
            if self._rechecks:
                deadline = min(deadline, self._rechecks[0])
            now = time.monotonic()
            if now >= deadline:
                return None
            self._wake_at(deadline, sub, now)
            await sub.wait()

    def _wake_at(self, deadline: float, sub: Subscription, now: float) -> None:
        # One timer per deadline, not a timeout per bus item (that was most of the fan-out's CPU): a
        # timer set for an earlier deadline (each write moves the heartbeat's later) wakes the stream
        # early, and `_next` then sets the next one.
        if self._timer is not None:
            if self._timer_at <= deadline:
                return
            self._timer.cancel()
        self._timer_at = deadline
        self._timer = asyncio.get_running_loop().call_later(deadline - now, self._on_timer, sub)

    def _on_timer(self, sub: Subscription) -> None:
        self._timer = None
        sub.wake()

    async def _on_item(self, item: Item) -> bytes:
        if item is RESYNC:
            return b"".join([chunk async for chunk in self._backfill()])
        assert isinstance(item, LiveEvent)
        if item.seq <= self.last_sent:
            return b""  # de-dupe: the backfill (or an earlier publish) already sent it
        if item.frame is None or item.seq > self.last_sent + 1:
            return self._send(await self._db(runs.read_range, self.last_sent, item.seq))
        return self._send_frame(item.seq, item.type, item.frame)

    async def _idle(self) -> AsyncIterator[bytes]:
        now = time.monotonic()
        self._rechecks = [t for t in self._rechecks if t > now]
        if now >= self._last_write + self._deps.config.heartbeat_ms / 1000:
            metrics.HEARTBEATS.inc()
            yield self._wrote(HEARTBEAT)
        async for chunk in self._safety_net():
            yield chunk

    async def _safety_net(self) -> AsyncIterator[bytes]:
        """Published events the bus did not bring, and the end of a run cancelled by hand."""
        try:
            status = await self._db(runs.stream_status, self.last_sent)
        except _Finished:
            return  # the DB is unreachable: keep the stream (heartbeats) and try again later
        if status is None:
            raise _Finished("run-deleted")
        if status.published_after_cursor:
            async for chunk in self._backfill():
                yield chunk
        elif status.finished_for(self.last_sent):
            raise _Finished("run-terminal")

    # -- helpers -------------------------------------------------------------------------------

    async def _db(self, query: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run a runs.* query on a pooled connection; an outage ends the stream (client resumes)."""
        try:
            async with self._deps.pool.connection() as conn:
                return await query(conn, self.run_id, *args)
        except Exception as exc:
            if db.is_outage(exc):
                raise _Finished("db-unavailable") from exc
            raise

    def _send(self, events: list[Event]) -> bytes:
        out = bytearray()
        for event in events:
            if event.seq > self.last_sent:
                out += self._send_frame(event.seq, event.type, event_frame(event.to_data()))
        return bytes(out)

    def _send_frame(self, seq: int, event_type: str, frame: bytes) -> bytes:
        # Whatever sends a frame has sent every seq before it, so no event published before the
        # subscribe can be missing any more: the post-backfill rechecks are moot (a backfill sets them
        # again when it ends). Kept, they made a busy stream poll the DB for as long as it stayed
        # behind: a recheck found the events still queued for it on the bus, backfilled them, and
        # scheduled the next recheck.
        self._rechecks = []
        self.last_sent = seq
        if event_type == TERMINAL_TYPE:
            self._terminal_sent = True
        return self._wrote(frame)

    def _wrote(self, chunk: bytes) -> bytes:
        self._last_write = time.monotonic()
        return chunk


def _int_or_none(raw: str | None) -> int | None:
    try:
        return int(raw) if raw is not None and raw.strip() != "" else None
    except ValueError:
        return None
