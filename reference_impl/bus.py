"""The live bus of one API process: ONE LISTEN connection on run_events_bus, fanned out in memory.

One connection per process (not per stream) keeps PostgreSQL's connection count flat with 100s of
streams, and each notification is parsed and framed once, then shared by every subscriber of its
run. After a reconnect every subscriber gets RESYNC: notifications sent while the connection was
down are lost, so streams re-read the database from their last sent seq.
"""

from __future__ import annotations

import asyncio
import json
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
    """One stream's view of the bus: a queue plus an `overflowed` flag for slow consumers."""

    def __init__(self, bus: Bus, run_id: str, max_backlog: int) -> None:
        self.run_id = run_id
        self.queue: asyncio.Queue[Item] = asyncio.Queue()
        self.overflowed = asyncio.Event()
        self._bus = bus
        self._max_backlog = max_backlog

    def deliver(self, item: Item) -> None:
        if self.overflowed.is_set():
            return
        if self.queue.qsize() >= self._max_backlog:
            self.overflowed.set()  # the stream closes; the client reconnects and backfills from the DB
            return
        self.queue.put_nowait(item)

    async def get(self) -> Item:
        return await self.queue.get()

    def get_nowait(self) -> Item | None:
        return None if self.queue.empty() else self.queue.get_nowait()

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
