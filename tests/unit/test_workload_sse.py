"""The SSE line parser (plain data) and the consumer against an in-process mock transport."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from hypothesis import given, strategies as st

from _histories import snapshot
from harness.checks import exactly_once, heartbeat, ordering, terminal
from harness.model import payload_digest
from harness.history import ConnClosed, ConnOpened, Frame, Heartbeat, History, of_kind
from harness.workload import (ConsumerConfig, ConsumerOutcome, SSEComment, SSEConsumer, SSEEvent, SSEParser,
                              decode_frame, parse)


def test_parse_frames_comments_and_ids() -> None:
    text = ": heartbeat\n\nid: 1\nevent: RunStep\ndata: {\"seq\":1}\n\n:hb\n\nid: 2\ndata: a\ndata: b\n\n"
    assert parse(text) == [
        SSEComment("heartbeat"),
        SSEEvent('{"seq":1}', "RunStep", "1"),
        SSEComment("hb"),
        SSEEvent("a\nb", "message", "2"),
    ]


def test_comment_only_and_id_only_blocks_dispatch_nothing() -> None:
    p = SSEParser()
    assert p.feed_lines(["id: 7", "", ": keepalive", ""]) == [SSEComment("keepalive")]
    assert p.last_event_id == "7"  # the id still moves the cursor, as in a browser


def test_crlf_retry_bom_and_unknown_fields() -> None:
    items = parse("\ufeffretry: 500\r\nfoo: bar\r\nid: 3\r\ndata: x\r\n\r\n")
    assert items == [SSEEvent("x", "message", "3", 500)]
    assert parse("retry: soon\ndata: y\n\n") == [SSEEvent("y")]


def test_id_with_nul_is_ignored_and_unterminated_block_is_not_dispatched() -> None:
    assert parse("id: a\0b\ndata: z\n\ndata: never") == [SSEEvent("z")]


@given(st.lists(st.tuples(st.integers(1, 10**6), st.sampled_from(["RunStep", "RunFinished"])), max_size=20))
def test_parser_round_trips_service_frames(events: list[tuple[int, str]]) -> None:
    wire = "".join(f"id: {s}\nevent: {t}\ndata: {json.dumps({'seq': s, 'type': t})}\n\n: heartbeat\n\n"
                   for s, t in events)
    items = [i for i in parse(wire) if isinstance(i, SSEEvent)]
    assert [(decode_frame(i)[0], decode_frame(i)[1]) for i in items] == events


def test_decode_frame_prefers_id_and_keeps_what_the_wire_said() -> None:
    data = json.dumps({"runId": "r", "seq": 9, "type": "RunStep", "ts": "2025-01-02T03:04:05.5Z", "payload": {"a": 1}})
    assert decode_frame(SSEEvent(data, "RunStep", "4")) == (4, "RunStep", 1735787045.5, 4, 9, "r",
                                                             payload_digest({"a": 1}))
    assert decode_frame(SSEEvent(data, "RunStep", None))[:2] == (9, "RunStep")
    assert decode_frame(SSEEvent("not json", "X", None)) == (None, "X", None, None, None, None, None)
    no_payload = json.dumps({"runId": "r", "seq": 9, "type": "RunStep"})
    assert decode_frame(SSEEvent(no_payload, "RunStep", "9")).payload_digest is None


# --- the consumer, against a scripted server ------------------------------------------------------

def _frame(seq: int, n: int) -> bytes:
    etype = "RunFinished" if seq == n else "RunStep"
    data = json.dumps({"runId": "r1", "seq": seq, "type": etype, "ts": "2025-01-02T03:04:05Z", "payload": {}})
    return f"id: {seq}\nevent: {etype}\ndata: {data}\n\n".encode()


class ScriptedServer:
    """Serves events 1..n; connection k stops after ``cuts[k]`` (EOF, or an error when odd)."""

    def __init__(self, n: int, cuts: list[int]) -> None:
        self.n, self.cuts = n, list(cuts)
        self.requests: list[tuple[str | None, str | None]] = []  # (fromSeq, Last-Event-ID) of each request

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        cursor = int(request.headers.get("Last-Event-ID") or request.url.params.get("fromSeq") or 0)
        self.requests.append((request.url.params.get("fromSeq"), request.headers.get("Last-Event-ID")))
        if cursor >= self.n:
            return httpx.Response(204)
        k = len(self.requests) - 1
        end = self.cuts[k] if k < len(self.cuts) else self.n
        return httpx.Response(200, headers={"content-type": "text/event-stream"},
                              content=self._body(cursor, end, fail=k % 2 == 1))

    async def _body(self, cursor: int, end: int, fail: bool) -> AsyncIterator[bytes]:
        yield b": heartbeat\n\n"
        for seq in range(cursor + 1, end + 1):
            yield _frame(seq, self.n)
        if fail and end < self.n:
            raise httpx.ReadError("connection reset")


def _consume(server: ScriptedServer, **cfg: Any) -> tuple[History, ConsumerOutcome]:
    history = History()
    config = ConsumerConfig("http://test", backoff_initial_s=0.0, **cfg)

    async def main() -> ConsumerOutcome:
        async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as client:
            return await SSEConsumer(config, history, client).consume("r1", "c0")

    return history, asyncio.run(main())


@pytest.mark.parametrize("resume", ["from_seq", "last_event_id"])
def test_consumer_reconnects_to_the_terminal_and_probes(resume: str) -> None:
    server = ScriptedServer(6, cuts=[2, 4])
    history, outcome = _consume(server, resume=resume, probe_after_terminal=True)
    assert outcome.stop_reason == "terminal" and outcome.last_seq == 6 and outcome.connections == 4
    assert [f.seq for f in of_kind(history, Frame)] == [1, 2, 3, 4, 5, 6]
    assert [c.reason for c in of_kind(history, ConnClosed)] == ["eof", "error", "terminal", "204"]
    assert [c.cursor for c in of_kind(history, ConnOpened)] == [0, 2, 4, 6]
    assert len(of_kind(history, Heartbeat)) == 3
    if resume == "last_event_id":  # the URL keeps the original fromSeq, the header moves
        assert server.requests == [("0", None), ("0", "2"), ("0", "4"), ("0", "6")]
    else:
        assert server.requests == [("0", None), ("2", None), ("4", None), ("6", None)]
    snap = snapshot(6)
    for mod in (exactly_once, ordering, terminal):
        assert mod.check(history, snap).valid is True
    assert heartbeat.check(history, snap).valid == "unknown"  # nothing was idle for 15 s


def test_consumer_stops_on_204_and_bounds_reconnects() -> None:
    history, outcome = _consume(ScriptedServer(0, cuts=[]))
    assert outcome.stop_reason == "204" and outcome.connections == 1

    async def always_500(request: httpx.Request) -> httpx.Response:
        return httpx.Response(500)

    history = History()
    config = ConsumerConfig("http://test", backoff_initial_s=0.0, max_reconnects=3)

    async def main() -> ConsumerOutcome:
        async with httpx.AsyncClient(transport=httpx.MockTransport(always_500)) as client:
            return await SSEConsumer(config, history, client).consume("r1", "c0")

    outcome = asyncio.run(main())
    assert outcome.stop_reason == "max_reconnects" and outcome.connections == 4
    assert {c.error for c in of_kind(history, ConnClosed)} == {"HTTP 500"}


def test_consumer_read_timeout_and_deadline() -> None:
    async def silent(request: httpx.Request) -> httpx.Response:
        async def body() -> AsyncIterator[bytes]:
            yield _frame(1, 9)
            await asyncio.sleep(10)
            yield b""
        return httpx.Response(200, content=body())

    history = History()
    config = ConsumerConfig("http://test", backoff_initial_s=0.05, deadline_s=0.3)

    async def main() -> ConsumerOutcome:
        async with httpx.AsyncClient(transport=httpx.MockTransport(silent)) as client:
            return await SSEConsumer(config, history, client).consume("r1", "c0")

    outcome = asyncio.run(main())
    assert outcome.stop_reason == "deadline" and outcome.last_seq == 1
    closes = of_kind(history, ConnClosed)
    assert closes[-1].reason == "timeout" and closes[-1].error == "overall deadline"
    assert len(of_kind(history, ConnOpened)) == len(closes)
