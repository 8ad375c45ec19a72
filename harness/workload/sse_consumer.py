"""An SSE consumer that records everything it sees into the History and reconnects like a client.

By default it reads raw lines with httpx (``aiter_lines``) and parses them with ``SSEParser``
(``open_lines``), so heartbeat comments are recorded; another reader plugs in as ``open_stream``
(``harness.workload.httpx_sse_consumer.open_httpx_sse``: httpx-sse, as users' code reads a stream).
Either way the status is looked at before the body, so a 204 is an answer rather than an exception.
Resume modes:

- ``"from_seq"``: every request carries ``?fromSeq=<last seq received>``.
- ``"last_event_id"``: a browser's EventSource: the URL keeps the *original* ``fromSeq`` and each
  reconnect sends ``Last-Event-ID: <last seq received>``, which the service must prefer.

It stops after ``RunFinished`` or a 204, or when the reconnect budget or the overall deadline is
spent. After ``RunFinished`` it does not hang up itself: it reads on for ``after_terminal_s`` and
records what it saw, so a server that keeps streaming or never closes shows in the history (the close
reason is ``terminal`` when the server closed, ``terminal_open`` when the window ran out; a server that
closes at once costs nothing). With ``probe_after_terminal`` it reconnects once more after
``RunFinished`` to record the 204 the contract promises (invariant 4).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import httpx

from harness.model import TERMINAL_TYPE, payload_digest, to_epoch
from harness.history import ConnClosed, ConnOpened, Frame, Heartbeat, History
from harness.workload.sse_parser import SSEComment, SSEEvent, SSEItem, SSEParser
from harness.workload.tls import tls_context

ResumeMode = Literal["from_seq", "last_event_id"]
StopReason = Literal["terminal", "204", "max_reconnects", "deadline"]


@dataclass(frozen=True)
class ConsumerConfig:
    base_url: str
    resume: ResumeMode = "from_seq"
    read_timeout_s: float = 60.0  # the runbook's recommended client timeout, above the 15 s heartbeat
    connect_timeout_s: float = 5.0
    backoff_initial_s: float = 0.1
    backoff_max_s: float = 2.0
    backoff_multiplier: float = 2.0
    honour_retry: bool = True  # a server `retry:` field replaces the backoff, as in a browser
    max_reconnects: int = 100
    deadline_s: float = 120.0
    probe_after_terminal: bool = False
    # How long to read on after RunFinished for the server's close (invariant 4: nothing may follow).
    after_terminal_s: float = 1.0
    headers: tuple[tuple[str, str], ...] = ()
    # With resume="last_event_id": the starting cursor also goes as `Last-Event-ID` on the first
    # request, with no `fromSeq` at all (a client resuming a stored id on a fresh page).
    cursor_header_from_start: bool = False
    stream_path: str = "/api/agents/runs/{run_id}/stream"  # the target's (its profile's target.stream_path)

    def stream_url(self, run_id: str) -> str:
        return f"{self.base_url.rstrip('/')}{self.stream_path.format(run_id=run_id)}"


@dataclass(frozen=True)
class ConsumerOutcome:
    consumer: str
    run_id: str
    last_seq: int
    stop_reason: str  # StopReason
    connections: int
    reached_terminal: bool


class WireFrame(NamedTuple):
    """What one SSE event said, as ``Frame`` fields: ``seq`` is the cursor (``id:`` else the data's)."""

    seq: int | None
    type: str
    event_ts: float | None
    id_seq: int | None
    data_seq: int | None
    data_run_id: str | None
    payload_digest: str | None


def decode_frame(event: SSEEvent) -> WireFrame:
    """One frame's fields; the data's own ``seq``, ``runId`` and payload digest are kept apart from
    ``id:`` so the content check can compare them with each other and with the database."""
    body = _json_object(event.data)
    envelope = body.get("event")
    inner: dict[str, Any] = envelope if isinstance(envelope, dict) else {}
    id_seq = _as_int(event.id)
    data_seq = _as_int(body.get("seq", inner.get("seq")))
    etype = body.get("type") or inner.get("type") or event.event
    run_id = body.get("runId", inner.get("runId"))
    source = body if "payload" in body else inner
    return WireFrame(id_seq if id_seq is not None else data_seq, str(etype), to_epoch(body.get("ts", inner.get("ts"))),
                     id_seq, data_seq, None if run_id is None else str(run_id),
                     payload_digest(source["payload"]) if "payload" in source else None)


def _json_object(data: str) -> dict[str, Any]:
    with contextlib.suppress(ValueError):
        obj = json.loads(data)
        if isinstance(obj, dict):
            return obj
    return {}


def _as_int(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


class Connection:
    """Records one connection's life into the history; the open and the close exactly once each."""

    def __init__(self, history: History, conn: str, consumer: str, run_id: str, cursor: int) -> None:
        self.h, self.conn, self.consumer, self.run_id, self.cursor = history, conn, consumer, run_id, cursor
        self.request: tuple[int | None, str | None] = (None, None)  # (fromSeq sent, Last-Event-ID sent)
        self.is_open = False
        self.closed_reason: str | None = None
        self.frames = 0
        self.saw_terminal = False
        self.retry: int | None = None  # the stream's `retry:` (ms), set by the reader

    def open(self, status: int | None) -> None:
        if not self.is_open:
            self.is_open = True
            self.h.append(ConnOpened(self.conn, self.consumer, self.run_id, *self.request, status,
                                     self.h.wall(), self.h.mono()))

    def item(self, item: SSEComment | SSEEvent) -> Frame | None:
        """Record the item; the frame recorded (None for a heartbeat), for a reader that measures it."""
        if isinstance(item, SSEComment):
            self.h.append(Heartbeat(self.conn, self.consumer, self.run_id, self.h.wall(), self.h.mono(), item.text))
            return None
        wire = decode_frame(item)
        frame = Frame(self.conn, self.consumer, self.run_id, wall=self.h.wall(), mono=self.h.mono(), **wire._asdict())
        self.h.append(frame)
        self.frames += 1
        if wire.seq is not None:
            self.cursor = wire.seq
        self.saw_terminal = self.saw_terminal or wire.type == TERMINAL_TYPE
        return frame

    def close(self, reason: str, error: str | None = None) -> str:
        if self.closed_reason is None:
            self.open(None)  # a request that failed before any answer still counts as a connection
            self.closed_reason = reason
            self.h.append(ConnClosed(self.conn, self.consumer, self.run_id, reason, self.h.wall(), self.h.mono(),
                                     self.cursor, error))
        return reason


# How one connection's request is made and its body read: (client, url, params, headers, timeout,
# connection) -> a context giving the answer's status and the SSE items of its body (read only on a 200).
StreamOpener = Callable[[httpx.AsyncClient, str, dict[str, str], dict[str, str], httpx.Timeout, Connection],
                        AbstractAsyncContextManager[tuple[int, AsyncIterator[SSEItem]]]]


@contextlib.asynccontextmanager
async def open_lines(client: httpx.AsyncClient, url: str, params: dict[str, str], headers: dict[str, str],
                     timeout: httpx.Timeout, conn: Connection) -> AsyncIterator[tuple[int, AsyncIterator[SSEItem]]]:
    """The harness's own reading: raw lines through ``SSEParser``, heartbeat comments included."""
    async with client.stream("GET", url, params=params, headers=headers, timeout=timeout) as resp:
        yield resp.status_code, _parsed(resp.aiter_lines(), conn)


async def _parsed(lines: AsyncIterator[str], conn: Connection) -> AsyncIterator[SSEItem]:
    parser = SSEParser()
    async for line in lines:
        items = parser.feed_line(line)
        conn.retry = parser.retry  # a `retry:` alone dispatches nothing but still counts
        for item in items:
            yield item


class SSEConsumer:
    """One subscriber of one run; ``consume`` returns when the stream is over for it."""

    def __init__(self, config: ConsumerConfig, history: History, client: httpx.AsyncClient | None = None,
                 open_stream: StreamOpener = open_lines) -> None:
        self.config = config
        self.history = history
        self._client = client
        self._open_stream = open_stream

    async def consume(self, run_id: str, consumer_id: str, from_seq: int = 0) -> ConsumerOutcome:
        cfg = self.config
        deadline = asyncio.get_running_loop().time() + cfg.deadline_s
        async with self._client_cm() as client:
            return await self._loop(client, run_id, consumer_id, from_seq, deadline)

    async def _loop(self, client: httpx.AsyncClient, run_id: str, consumer: str, from_seq: int,
                    deadline: float) -> ConsumerOutcome:
        cursor, backoff, n, retry = from_seq, self.config.backoff_initial_s, 0, None
        terminal_at: int | None = None  # the connection number that delivered RunFinished
        while True:
            conn = Connection(self.history, f"{consumer}#{n}", consumer, run_id, cursor)
            n += 1
            reason = await self._attempt(client, conn, from_seq, deadline)
            cursor, retry = conn.cursor, conn.retry if conn.retry is not None else retry
            if conn.saw_terminal and terminal_at is None:
                terminal_at = n
            stop = self._stop_reason(reason, terminal_at, n, deadline)
            if stop is not None:
                return ConsumerOutcome(consumer, run_id, cursor, stop, n, terminal_at is not None)
            backoff = self.config.backoff_initial_s if conn.frames else backoff
            await asyncio.sleep(self._delay(backoff, retry, deadline))
            if asyncio.get_running_loop().time() >= deadline:
                return ConsumerOutcome(consumer, run_id, cursor, "deadline", n, False)
            backoff = min(backoff * self.config.backoff_multiplier, self.config.backoff_max_s)

    def _stop_reason(self, reason: str, terminal_at: int | None, n: int, deadline: float) -> str | None:
        if terminal_at is not None:  # done, unless the one probe after the terminal is still due
            probe_due = self.config.probe_after_terminal and n == terminal_at
            return None if probe_due else "terminal"
        if reason == "204":
            return "204"
        if asyncio.get_running_loop().time() >= deadline:
            return "deadline"
        if n > self.config.max_reconnects:
            return "max_reconnects"
        return None

    def _delay(self, backoff: float, retry_ms: int | None, deadline: float) -> float:
        delay = retry_ms / 1000.0 if (retry_ms is not None and self.config.honour_retry) else backoff
        return max(0.0, min(delay, deadline - asyncio.get_running_loop().time()))

    async def _attempt(self, client: httpx.AsyncClient, conn: Connection, from_seq: int, deadline: float) -> str:
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout_at(deadline):
                return await self._stream(client, conn, from_seq)
        except TimeoutError:
            return conn.close("timeout", "overall deadline")
        except httpx.TimeoutException as exc:
            return conn.close("timeout", repr(exc))
        except (httpx.TransportError, httpx.StreamError) as exc:
            return conn.close("error", repr(exc))
        except asyncio.CancelledError:
            conn.close("timeout" if loop.time() >= deadline else "error", "cancelled")
            raise
        except Exception as exc:  # recorded, then let the caller see the bug
            conn.close("error", repr(exc))
            raise

    async def _stream(self, client: httpx.AsyncClient, conn: Connection, from_seq: int) -> str:
        params, headers = self._request_parts(conn.cursor, from_seq)
        conn.request = (_as_int(params.get("fromSeq")), headers.get("Last-Event-ID"))
        url = self.config.stream_url(conn.run_id)
        async with self._open_stream(client, url, params, headers, self._timeout(), conn) as (status, items):
            conn.open(status)
            if status == 204:
                return conn.close("204")
            if status != 200:
                return conn.close("error", f"HTTP {status}")
            async for item in items:
                conn.item(item)
                if conn.saw_terminal:
                    return await self._after_terminal(conn, items)
        return conn.close("eof")

    async def _after_terminal(self, conn: Connection, items: AsyncIterator[SSEItem]) -> str:
        """Read on for the window after RunFinished: whatever arrives is recorded, then who closed."""
        window = self.config.after_terminal_s
        try:
            async with asyncio.timeout(window):
                async for item in items:
                    conn.item(item)
        except (TimeoutError, httpx.TimeoutException):
            return conn.close("terminal_open", f"still open {window}s after the terminal event")
        except (httpx.TransportError, httpx.StreamError) as exc:  # dropped rather than closed: still not open
            return conn.close("terminal", repr(exc))
        return conn.close("terminal")

    def _request_parts(self, cursor: int, from_seq: int) -> tuple[dict[str, str], dict[str, str]]:
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache", **dict(self.config.headers)}
        if self.config.resume == "from_seq":
            return {"fromSeq": str(cursor)}, headers
        if self.config.cursor_header_from_start:
            headers["Last-Event-ID"] = str(cursor)
            return {}, headers
        if cursor != from_seq:  # like a browser: the header only once an id was received
            headers["Last-Event-ID"] = str(cursor)
        return {"fromSeq": str(from_seq)}, headers

    def _timeout(self) -> httpx.Timeout:
        cfg = self.config
        return httpx.Timeout(cfg.read_timeout_s, connect=cfg.connect_timeout_s)

    @contextlib.asynccontextmanager
    async def _client_cm(self) -> Any:
        if self._client is not None:
            yield self._client
            return
        async with httpx.AsyncClient(timeout=self._timeout(), verify=tls_context()) as client:
            yield client


async def consume_all(config: ConsumerConfig, history: History, run_id: str, consumers: int,
                      from_seq: int = 0, prefix: str = "c", open_stream: StreamOpener = open_lines
                      ) -> list[ConsumerOutcome]:
    """``consumers`` concurrent subscribers of one run, sharing one connection pool."""
    limits = httpx.Limits(max_connections=consumers + 10, max_keepalive_connections=consumers)
    async with httpx.AsyncClient(limits=limits, timeout=httpx.Timeout(config.read_timeout_s),
                                 verify=tls_context()) as client:
        consumer = SSEConsumer(config, history, client, open_stream)
        return list(await asyncio.gather(*(consumer.consume(run_id, f"{prefix}{i}", from_seq)
                                           for i in range(consumers))))


__all__ = ["Connection", "ConsumerConfig", "ConsumerOutcome", "ResumeMode", "SSEConsumer", "StreamOpener", "WireFrame",
           "consume_all", "decode_frame", "open_lines"]
