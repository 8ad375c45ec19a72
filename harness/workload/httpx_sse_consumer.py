"""httpx-sse as the SSE client: a run's stream read the way users' Python code reads one.

``open_httpx_sse`` is a reader for ``SSEConsumer`` / ``consume_all`` (``open_stream=open_httpx_sse``):
each connection is an ``httpx_sse.aconnect_sse`` request and its events come from
``EventSource.aiter_sse()``, so the service is checked against httpx-sse's decoder (its line
splitting, its ``id`` kept across events, its ``retry``) rather than the harness's own parser. The
frames are decoded and recorded like every other consumer's (``decode_frame``, ``Connection``).

The reconnecting stays ``SSEConsumer``'s, and with ``resume="last_event_id"`` it is what an
httpx-sse user writes around ``aconnect_sse``: keep the last ``sse.id`` and ``sse.retry``, look at
``event_source.response.status_code`` before ``aiter_sse()`` (which raises ``SSEError`` on anything
not ``text/event-stream``, a 204 included), stop on a 204, otherwise wait ``retry`` ms and ask again
with ``Last-Event-ID``.

What httpx-sse shows differently from a browser's EventSource:

- comment lines are dropped, so its connections record no ``Heartbeat`` (the ``heartbeat`` invariant
  is not judged from them);
- a block without data (the service's opening ``retry: N``) is still yielded, as an event with empty
  data; like a careful user, the reader takes its ``retry`` and records no frame for it.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from httpx_sse import EventSource, aconnect_sse

from harness.workload.sse_consumer import Connection
from harness.workload.sse_parser import SSEEvent, SSEItem


@contextlib.asynccontextmanager
async def open_httpx_sse(client: httpx.AsyncClient, url: str, params: dict[str, str], headers: dict[str, str],
                         timeout: httpx.Timeout, conn: Connection
                         ) -> AsyncIterator[tuple[int, AsyncIterator[SSEItem]]]:
    """One stream request through httpx-sse (which sets ``Accept`` and ``Cache-Control`` itself)."""
    async with aconnect_sse(client, "GET", url, params=params, headers=dict(headers), timeout=timeout) as source:
        yield source.response.status_code, _events(source, conn)


async def _events(source: EventSource, conn: Connection) -> AsyncIterator[SSEItem]:
    async for sse in source.aiter_sse():
        if sse.retry is not None:
            conn.retry = sse.retry
        if sse.data:
            yield SSEEvent(sse.data, sse.event, sse.id or None, sse.retry)  # httpx-sse's id "" is no id


__all__ = ["open_httpx_sse"]
