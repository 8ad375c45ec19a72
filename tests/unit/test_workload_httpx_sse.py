"""The httpx-sse reader (harness/workload/httpx_sse_consumer.py) in SSEConsumer, against a scripted
server on an in-process mock transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Coroutine

import httpx
from test_workload_sse import ScriptedServer

from _histories import snapshot
from harness.checks import exactly_once, ordering, terminal
from harness.history import ConnClosed, ConnOpened, Frame, Heartbeat, History, of_kind
from harness.workload import ConsumerConfig, ConsumerOutcome, SSEConsumer, StreamOpener, open_httpx_sse, open_lines


Handler = Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]


def _run(server: Handler, reader: StreamOpener, **cfg: object) -> tuple[History, ConsumerOutcome]:
    history = History()
    config = ConsumerConfig("http://test", resume="last_event_id", **cfg)  # type: ignore[arg-type]

    async def main() -> ConsumerOutcome:
        async with httpx.AsyncClient(transport=httpx.MockTransport(server)) as client:
            return await SSEConsumer(config, history, client, reader).consume("r1", "x0")

    return history, asyncio.run(main())


def _wire(history: History) -> list[tuple[object, ...]]:
    """What each frame said, without when it came."""
    return [(f.seq, f.type, f.event_ts, f.id_seq, f.data_seq, f.data_run_id, f.payload_digest)
            for f in of_kind(history, Frame)]


def test_it_resumes_with_last_event_id_and_records_what_the_harness_reader_records() -> None:
    server = ScriptedServer(6, cuts=[2, 4])
    history, outcome = _run(server, open_httpx_sse, backoff_initial_s=0.0, probe_after_terminal=True)
    assert (outcome.stop_reason, outcome.last_seq, outcome.connections) == ("terminal", 6, 4)
    assert server.requests == [("0", None), ("0", "2"), ("0", "4"), ("0", "6")]
    assert [c.reason for c in of_kind(history, ConnClosed)] == ["eof", "error", "terminal", "204"]
    assert of_kind(history, Heartbeat) == []  # httpx-sse drops comment lines

    baseline, _ = _run(ScriptedServer(6, cuts=[2, 4]), open_lines, backoff_initial_s=0.0, probe_after_terminal=True)
    assert _wire(history) == _wire(baseline) and [w[0] for w in _wire(history)] == [1, 2, 3, 4, 5, 6]
    assert _wire(history)[0][3:6] == (1, 1, "r1")  # id, data seq and run id all kept
    snap = snapshot(6)
    for mod in (exactly_once, ordering, terminal):
        assert mod.check(history, snap).valid is True


class RetryServer(ScriptedServer):
    """Opens every stream with a data-less `retry:` block, as the service does with SSE_RETRY_MS."""

    async def _body(self, cursor: int, end: int, fail: bool) -> AsyncIterator[bytes]:
        yield b"retry: 50\n\n"
        async for chunk in super()._body(cursor, end, fail):
            yield chunk


def test_a_retry_block_sets_the_pause_before_the_next_request_and_is_no_frame() -> None:
    # A 3 s backoff would outlast the deadline: only the stream's 50 ms retry lets the consumer finish.
    history, outcome = _run(RetryServer(4, cuts=[2]), open_httpx_sse, backoff_initial_s=3.0, deadline_s=2.0)
    assert outcome.stop_reason == "terminal"
    assert [f.seq for f in of_kind(history, Frame)] == [1, 2, 3, 4]
    closed, reopened = of_kind(history, ConnClosed)[0], of_kind(history, ConnOpened)[1]
    assert 0.05 <= reopened.mono - closed.mono < 1.0


def test_a_stream_that_is_not_text_event_stream_is_an_error() -> None:
    async def json_body(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json={"id": 1})

    history, outcome = _run(json_body, open_httpx_sse, backoff_initial_s=0.0, max_reconnects=1)
    assert (outcome.stop_reason, outcome.connections) == ("max_reconnects", 2)
    assert all(c.reason == "error" and "SSEError" in str(c.error) for c in of_kind(history, ConnClosed))
