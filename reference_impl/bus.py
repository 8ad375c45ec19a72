"""The live bus of one API process: ONE LISTEN connection on run_events_bus, fanned out in memory.

One connection per process (not per stream) keeps PostgreSQL's connection count flat with 100s of
streams, and each notification is parsed and framed once, then shared by every subscriber of its
run. After a reconnect every subscriber gets RESYNC: notifications sent while the connection was
down are lost, so streams re-read the database from their last sent seq.
"""

from __future__ import annotations

import asyncio
import json
from collections import deque
from dataclasses import dataclass
from typing import Any

from .config import Config
from .listener import Listener
from .logs import Logger
from .sse_framing import event_frame

__all__ = ["BUS_CHANNEL", "RESYNC", "Bus", "LiveEvent", "Subscription"]

BUS_CHANNEL = "run_events_bus"
_log = Logger("bus")


@dataclass(frozen=True)
class LiveEvent:
    run_id: str
    seq: int
    type: str
    frame: bytes | None  # None when the notification was too big to carry the event: read it by seq


class _Resync:
    def __repr__(self) -> str:
        return "RESYNC"


RESYNC = _Resync()
Item = LiveEvent | _Resync


class Subscription:
    """One stream's view of the bus: its queued items, one waiter, and an `overflowed` flag for slow
    consumers. Not an asyncio.Queue: the stream also needs to be woken by its own timer (`wake`),
    without an item and without a timeout context per item."""

    def __init__(self, bus: Bus, run_id: str, max_backlog: int) -> None:
        self.run_id = run_id
        self.overflowed = asyncio.Event()
        self._items: deque[Item] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self._bus = bus
        self._max_backlog = max_backlog

    def deliver(self, item: Item) -> None:
        if self.overflowed.is_set():
            return
        if len(self._items) >= self._max_backlog:
            self.overflowed.set()  # the stream closes; the client reconnects and backfills from the DB
            return
        self._items.append(item)
        self.wake()

    def wake(self) -> None:
        """End a pending `wait()`."""
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    async def wait(self) -> None:
        """Until an item is delivered or `wake()` is called; returns at once when items are queued."""
        if self._items:
            return
        self._waiter = asyncio.get_running_loop().create_future()
        try:
            await self._waiter
        finally:
            self._waiter = None

    def get_nowait(self) -> Item | None:
        return self._items.popleft() if self._items else None

    def close(self) -> None:
        self._bus.unsubscribe(self)


class Bus:
    def __init__(self, config: Config) -> None:
        self._subs: dict[str, set[Subscription]] = {}
        self._max_backlog = config.stream_max_backlog
        self._listener = Listener(config, [BUS_CHANNEL], self._on_notify, self._on_connect, "bus")
        self._task: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._listener.connected

    def start(self) -> None:
        self._task = asyncio.create_task(self._listener.run(), name="bus-listener")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def subscribe(self, run_id: str) -> Subscription:
        sub = Subscription(self, run_id, self._max_backlog)
        self._subs.setdefault(run_id, set()).add(sub)
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        subs = self._subs.get(sub.run_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self._subs[sub.run_id]

    def _on_connect(self) -> None:
        for subs in self._subs.values():
            for sub in subs:
                sub.deliver(RESYNC)

    def _on_notify(self, channel: str, payload: str) -> None:
        try:
            data = json.loads(payload)
            subs = self._subs.get(str(data["runId"]))
            if not subs:
                return  # nobody here streams this run: skip building the frame
            event = _parse(data)
        except (ValueError, KeyError, TypeError) as exc:
            _log.warn("bus.bad_payload", error=str(exc), payload=payload[:200])
            return
        for sub in tuple(subs):
            sub.deliver(event)


def _parse(data: dict[str, Any]) -> LiveEvent:
    """Frame the event once; every subscriber of the run shares the same bytes."""
    body = data.get("event")
    frame = event_frame(body) if isinstance(body, dict) else None
    return LiveEvent(str(data["runId"]), int(data["seq"]), str(data["type"]), frame)
