"""Conformance of the service to its contract on the real local stack (runbook: "Rebuild Stream",
"Common Failure Patterns" 1, 2 and 4, and the stream's basic promises), judged by the checkers from
what the consumers actually received. The stream's promises are checked with two clients: the
harness's own reader (raw lines, heartbeats included) and httpx-sse, as users' Python code reads a
stream (harness/workload/httpx_sse_consumer.py); Chromium's EventSource is scenarios/test_browser.py."""
from __future__ import annotations

import asyncio
from collections.abc import Callable

import httpx
import pytest

from harness.model import RunSnapshot
from harness.checks._deliveries import connections
from harness.history import Frame, of_kind
from harness.nemesis import armed_failpoint, down, killed, paused, toxic
from harness.observer import take_snapshot, wait_for_outbox
from harness.scenario import (
    BACKFILL,
    ScenarioRecord,
    assert_invariants,
    consumer_config,
    start_run,
)
from harness.stack import LocalStack, wait_until
from harness.workload import (
    ClientConfig,
    RunsClient,
    consume_all,
    open_httpx_sse,
    open_lines,
)

pytestmark = [pytest.mark.stack, pytest.mark.anyio]
ENDED = ("terminal", "terminal_open", "204")  # how a consumer's connection ends with its run, not cut
READERS = {"harness": open_lines, "httpx-sse": open_httpx_sse}
# (client, resume mode): httpx-sse resumes the way its users write it, with Last-Event-ID.
CLIENTS = [("harness", "from_seq"), ("harness", "last_event_id"), ("httpx-sse", "last_event_id")]



def _frames(scenario: ScenarioRecord, consumer: str) -> list[Frame]:
    return [f for f in of_kind(scenario.history, Frame) if f.consumer == consumer and f.seq is not None]


@pytest.mark.parametrize(("client", "resume"), CLIENTS)
async def test_a_run_streams_started_to_finished_in_order(stack: LocalStack, clean_db: str,
                                                          scenario: ScenarioRecord, client: str, resume: str) -> None:
    run_id = await start_run(stack, scenario, steps=20, interval_ms=10)
    outcomes = await consume_all(consumer_config(stack, probe_after_terminal=True, resume=resume), scenario.history,
                                 run_id, 3, open_stream=READERS[client])
    assert all(o.reached_terminal for o in outcomes)
    types = [f.type for f in _frames(scenario, "c0")]
    assert types == ["RunStarted", *["RunStep"] * 20, "RunFinished"]
    assert_invariants(stack, scenario, [run_id], require_204_probe=True)


@pytest.mark.parametrize(("client", "resume"), CLIENTS)
async def test_reconnect_from_a_cursor_starts_at_the_next_seq(stack: LocalStack, clean_db: str,
                                                              scenario: ScenarioRecord, client: str,
                                                              resume: str) -> None:
    run_id = await start_run(stack, scenario, steps=12, interval_ms=0)
    wait_for_outbox(stack.info.dsn, [run_id])
    config = consumer_config(stack, resume=resume)
    for k in (0, 1, 7, 12):
        await consume_all(config, scenario.history, run_id, 1, from_seq=k, prefix=f"from{k}-",
                          open_stream=READERS[client])
        assert _frames(scenario, f"from{k}-0")[0].seq == k + 1
    assert_invariants(stack, scenario, [run_id], BACKFILL)  # every client joined after the end


async def test_last_event_id_wins_over_from_seq(stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    run_id = await start_run(stack, scenario, steps=10, interval_ms=0)
    wait_for_outbox(stack.info.dsn, [run_id])
    url = f"{stack.info.api_url}/api/agents/runs/{run_id}/stream?fromSeq=2"
    async with httpx.AsyncClient(timeout=10) as client:
        async with client.stream("GET", url, headers={"Last-Event-ID": "7"}) as resp:
            ids = [line for line in [ln async for ln in resp.aiter_lines()] if line.startswith("id:")]
    assert resp.headers["content-type"].startswith("text/event-stream")
    assert resp.headers["x-accel-buffering"] == "no" and "no-cache" in resp.headers["cache-control"]
    assert ids[0] == "id: 8" and ids[-1] == "id: 12"


async def test_a_cursor_at_or_past_the_terminal_event_gets_204(stack: LocalStack, clean_db: str,
                                                               scenario: ScenarioRecord) -> None:
    run_id = await start_run(stack, scenario, steps=3, interval_ms=0)
    wait_for_outbox(stack.info.dsn, [run_id])
    url = f"{stack.info.api_url}/api/agents/runs/{run_id}/stream"
    async with httpx.AsyncClient(timeout=10) as client:
        at_terminal = await client.get(url, params={"fromSeq": 5})
        past_terminal = await client.get(url, headers={"Last-Event-ID": "9"})
        before_terminal = await client.get(url, params={"fromSeq": 4})
    assert (at_terminal.status_code, past_terminal.status_code) == (204, 204)
    assert before_terminal.status_code == 200 and "id: 5" in before_terminal.text


async def test_concurrent_appenders_leave_no_gap(stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    # The queue worker is held so only the 8 appenders write: seq must be exactly 1..1600.
    with paused(stack, scenario.history, "queue-worker-0"):
        run_id = await start_run(stack, scenario)
        async with RunsClient(ClientConfig(stack.info.api_url, timeout_s=30), scenario.history) as client:
            async def appender(i: int) -> list[int]:
                ops = [await client.append_event(run_id, "Appended", {"appender": i, "n": n}) for n in range(200)]
                return [op.value["seq"] for op in ops if op.type == "ok"]

            per_appender = await asyncio.gather(*(appender(i) for i in range(8)))
            assert (await client.cancel(run_id)).type == "ok"
    for i, seqs in enumerate(per_appender):
        assert len(seqs) == 200, f"appender {i}: {200 - len(seqs)} of its appends were refused"
        assert seqs == sorted(seqs), f"appender {i} got seqs out of order: one seq was handed out twice or late"
    assert sorted(s for seqs in per_appender for s in seqs) == list(range(1, 1601))
    assert_invariants(stack, scenario, [run_id], ("gapless", "outbox_converged"))


async def test_append_after_the_terminal_event_is_refused(stack: LocalStack, clean_db: str,
                                                          scenario: ScenarioRecord) -> None:
    run_id = await start_run(stack, scenario, steps=2, interval_ms=0)
    await consume_all(consumer_config(stack), scenario.history, run_id, 1)  # the terminal event is seen first
    async with RunsClient(ClientConfig(stack.info.api_url), scenario.history) as client:
        late = await client.append_event(run_id, "RunStep", {"late": True})
        cancel = await client.cancel(run_id)
    assert late.type == "fail" and late.value["status"] == 409 and "Non-monotonic seq append" in str(late.error)
    assert cancel.type == "fail" and cancel.value["status"] == 409
    # A run of a few appends: its outbox converges in well under a second.
    assert_invariants(stack, scenario, [run_id], ("gapless", "outbox_converged", "no_append_after_terminal"), wait_s=5)


async def test_reset_peer_mid_stream_loses_and_duplicates_nothing(stack: LocalStack, clean_db: str,
                                                                  scenario: ScenarioRecord) -> None:
    run_id = await start_run(stack, scenario, steps=80, interval_ms=20)
    config = consumer_config(stack, backoff_initial_s=0.05)

    async def cut_twice() -> None:
        for _ in range(2):
            await asyncio.sleep(0.4)
            # reset_peer resets a connection when its next bytes pass: keep it long enough for a frame.
            with toxic(stack, scenario.history, "sse", "reset_peer", timeout=0):
                await asyncio.sleep(0.3)

    by_header = consumer_config(stack, resume="last_event_id", backoff_initial_s=0.05)
    clients = asyncio.gather(consume_all(config, scenario.history, run_id, 2, prefix="q"),
                             consume_all(by_header, scenario.history, run_id, 2, prefix="h"),
                             consume_all(by_header, scenario.history, run_id, 2, prefix="x",
                                         open_stream=open_httpx_sse))
    outcomes, _ = await asyncio.gather(clients, cut_twice())
    cuts = _cuts(scenario)
    assert any(conn.startswith("x") for conn, *_ in cuts), f"the fault never cut an httpx-sse stream: {cuts}"
    # Every cut consumer reconnected from the cursor it had and went on from the next seq.
    assert all(cursor is not None and again == cursor and resumed_at == cursor + 1
               for _, cursor, again, resumed_at in cuts), cuts
    assert_invariants(stack, scenario, [run_id])


def _cuts(scenario: ScenarioRecord) -> list[tuple[str, int | None, int | None, int | None]]:
    """For each connection that ended before its run did: (connection, the consumer's cursor then, the
    cursor of its next request, the first seq it received after the cut)."""
    conns = connections(scenario.history)
    out = []
    for i, conn in enumerate(conns):
        if conn.closed is None or conn.closed.reason in ENDED:
            continue
        later = [c for c in conns[i + 1:] if c.consumer == conn.consumer]
        resumed_at = next((f.seq for c in later for f in c.frames), None)
        out.append((conn.conn, conn.closed.last_seq, later[0].cursor if later else None, resumed_at))
    return out


async def test_httpx_sse_takes_the_streams_retry_and_resumes_after_a_cut(stack_factory: Callable[..., LocalStack],
                                                                        scenario: ScenarioRecord) -> None:
    # The stream opens with a data-less `retry:` block, which httpx-sse (unlike EventSource) yields.
    retry_ms, backoff_s = 500, 5.0
    stack: LocalStack = stack_factory(sse_retry_ms=retry_ms)
    run_id = await start_run(stack, scenario, steps=40, interval_ms=50)
    config = consumer_config(stack, resume="last_event_id", backoff_initial_s=backoff_s, probe_after_terminal=True)
    consuming = asyncio.ensure_future(consume_all(config, scenario.history, run_id, 1, prefix="x",
                                                  open_stream=open_httpx_sse))
    await asyncio.to_thread(wait_until, lambda: len(_frames(scenario, "x0")) >= 5, 10, "the first frames")
    with down(stack, scenario.history, "sse"):  # closes the open stream for sure, refuses new ones
        await asyncio.sleep(0.2)
    [outcome] = await consuming
    assert outcome.reached_terminal and outcome.connections >= 3, outcome  # cut, resumed, probed
    assert [f.seq for f in of_kind(scenario.history, Frame)] == list(range(1, 43))  # no frame for the retry block
    conns = connections(scenario.history)
    # Every pause between requests was the stream's retry, never the consumer's own backoff.
    pauses = [b.opened.mono - a.closed.mono for a, b in zip(conns, conns[1:])]  # type: ignore[union-attr]
    assert all(retry_ms / 1000 <= p < backoff_s for p in pauses), pauses
    assert_invariants(stack, scenario, [run_id], require_204_probe=True)


async def test_crash_between_publish_and_mark_republishes_without_duplicate_delivery(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    worker = stack.process("outbox-worker-0")
    with armed_failpoint(stack, scenario.history, "outbox-worker-0", "outbox.after_publish", "1*crash"):
        run_id = await start_run(stack, scenario, steps=30, interval_ms=10)
        consuming = asyncio.ensure_future(consume_all(consumer_config(stack), scenario.history, run_id, 2))
        await asyncio.to_thread(wait_until, lambda: not worker.running, 20, "the outbox worker to crash")
    stack.heal()  # the operator's "restart outbox worker"
    await consuming
    result = assert_invariants(stack, scenario, [run_id], BACKFILL)  # the run's live frames all fall in the crash
    assert result.evidence["no_duplicate_delivery"]["duplicate_publishes"]["republished"], "the crash re-published nothing"


async def test_postgres_restart_mid_run_loses_nothing(stack: LocalStack, clean_db: str,
                                                      scenario: ScenarioRecord) -> None:
    run_id = await start_run(stack, scenario, steps=60, interval_ms=20)
    consuming = asyncio.ensure_future(consume_all(consumer_config(stack), scenario.history, run_id, 2))
    before = await asyncio.to_thread(wait_until, lambda: _open_with(clean_db, run_id, 5), 15, "the run to be mid-way")
    with killed(stack, scenario.history, "postgres"):
        await asyncio.sleep(0.5)
    restarted = _open_with(clean_db, run_id, 0)
    outcomes = await consuming
    after = take_snapshot(clean_db, [run_id]).runs[run_id]
    # The crash hit the run in flight: events appended before it, and after the restart (the run was
    # still open when PostgreSQL came back and went on to its end).
    assert restarted is not None, "the run ended before PostgreSQL was back"
    assert 0 < before.last_seq <= restarted.last_seq < after.last_seq, (before.last_seq, restarted.last_seq,
                                                                         after.last_seq)
    assert all(o.reached_terminal for o in outcomes), outcomes
    assert_invariants(stack, scenario, [run_id], BACKFILL)  # the restart spans the run's live phase


def _open_with(dsn: str, run_id: str, events: int) -> RunSnapshot | None:
    """The run as the database has it now, if it is still open with at least `events` events."""
    run = take_snapshot(dsn, [run_id]).runs[run_id]
    return run if run.state == "started" and run.last_seq >= events else None


@pytest.mark.parametrize(("method", "path", "kwargs", "status"), [
    ("GET", "/api/agents/runs/not-a-uuid", {}, 400),
    ("GET", "/api/agents/runs/00000000-0000-4000-8000-000000000000", {}, 404),
    ("GET", "/api/agents/runs/00000000-0000-4000-8000-000000000000/stream", {}, 404),
    ("POST", "/api/agents/runs", {"content": b"{not json"}, 400),
    ("POST", "/api/agents/runs", {"json": {"script": {"steps": -1}}}, 400),
    ("POST", "/api/agents/runs", {"json": {"script": {"outcome": "exploded"}}}, 400),
    ("POST", "/api/agents/runs", {"json": {"script": {"steps": 1, "junk": 1}}}, 400),
    ("POST", "/api/agents/runs", {"content": b"x" * 70000}, 413),
])
async def test_bad_input_gets_a_4xx_with_a_message(stack: LocalStack, clean_db: str, method: str, path: str,
                                                   kwargs: dict, status: int) -> None:
    async with httpx.AsyncClient(base_url=stack.info.api_url, timeout=10) as client:
        resp = await client.request(method, path, **kwargs)
    assert resp.status_code == status and resp.json()["error"]


@pytest.mark.parametrize("query,header", [
    ({"fromSeq": "-1"}, {}), ({"fromSeq": "abc"}, {}), ({"fromSeq": str(2**63)}, {}),
    ({}, {"Last-Event-ID": "garbage"}), ({}, {"Last-Event-ID": "-3"}),
])
async def test_a_bad_cursor_gets_400(stack: LocalStack, clean_db: str, scenario: ScenarioRecord,
                                     query: dict, header: dict) -> None:
    run_id = await start_run(stack, scenario, steps=1, interval_ms=0)
    async with httpx.AsyncClient(base_url=stack.info.api_url, timeout=10) as client:
        resp = await client.get(f"/api/agents/runs/{run_id}/stream", params=query, headers=header)
    assert resp.status_code == 400 and resp.json()["error"]
