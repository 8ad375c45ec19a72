"""An ASGI response for Server-Sent Events that notices a departed client at once.

uvicorn (ASGI spec 2.3) reports a disconnect only through `receive()`, and its `send()` to a gone
client returns silently, so a stream that only writes would find out at its next heartbeat. Here a
watcher task awaits `http.disconnect` (and the stream's own stop signals) and cancels the producer.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

__all__ = ["SSE_HEADERS", "SSEResponse"]

SSE_HEADERS = (
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache, no-transform"),
    (b"x-accel-buffering", b"no"),  # tells nginx not to buffer this response
    (b"connection", b"keep-alive"),
)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


class SSEResponse:
    """Streams `body`; stops on client disconnect or when any of `stop_events` is set.

    `on_close(reason)` runs exactly once with: "end" (the body finished), "client-disconnect",
    or the name of the stop event that fired first.
    """

    def __init__(self, body: AsyncIterator[bytes], on_close: Callable[[str], None],
                 stop_events: dict[str, asyncio.Event]) -> None:
        self._body = body
        self._on_close = on_close
        self._stops = stop_events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        reason = "error"
        try:
            await send({"type": "http.response.start", "status": 200, "headers": list(SSE_HEADERS)})
            reason = await self._race(receive, send)
            if reason == "end" or reason in self._stops:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except OSError:
            reason = "client-disconnect"
        finally:
            self._on_close(reason)

    async def _race(self, receive: Receive, send: Send) -> str:
        tasks: dict[asyncio.Future[Any], str] = {
            asyncio.ensure_future(self._produce(send)): "end",
            asyncio.ensure_future(_wait_disconnect(receive)): "client-disconnect",
        }
        for name, event in self._stops.items():
            tasks[asyncio.ensure_future(event.wait())] = name
        try:
            done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
        winner = next(iter(done))
        if tasks[winner] == "end":
            winner.result()  # re-raise a producer failure
        return tasks[winner]

    async def _produce(self, send: Send) -> None:
        async for chunk in self._body:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})


async def _wait_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
