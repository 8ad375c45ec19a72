"""Conformance of the service to its contract on the real local stack (runbook: "Rebuild Stream",
"Common Failure Patterns" 1, 2 and 4, and the stream's basic promises), judged by the checkers from
what the consumers actually received. The stream's promises are checked with two clients: the
harness's own reader (raw lines, heartbeats included) and httpx-sse, as users' Python code reads a
stream (harness/workload/httpx_sse_consumer.py); Chromium's EventSource is scenarios/test_browser.py."""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from harness.nemesis import ResetPeer
from harness.observer import RunRow
from harness.scenario import BACKFILL
from harness.stack import LocalStack
from harness.toolkit import Scenario
from harness.workload import open_httpx_sse, open_lines

pytestmark = [pytest.mark.stack, pytest.mark.anyio]
READERS = {"harness": open_lines, "httpx-sse": open_httpx_sse}
# (client, resume mode): httpx-sse resumes the way its users write it, with Last-Event-ID.
CLIENTS = [("harness", "from_seq"), ("harness", "last_event_id"), ("httpx-sse", "last_event_id")]


@pytest.mark.parametrize(("client", "resume"), CLIENTS)
async def test_a_run_streams_started_to_finished_in_order(clean_db: str, scenario: Scenario, client: str,
                                                          resume: str) -> None:
    run_id = await scenario.start_run(steps=20, interval_ms=10)
    outcomes = await scenario.consume(run_id, 3, probe_after_terminal=True, resume=resume,
                                      open_stream=READERS[client])
    assert all(o.reached_terminal for o in outcomes)
    types = [f.type for f in scenario.frames(run_id, consumer="c0")]
    assert types == ["RunStarted", *["RunStep"] * 20, "RunFinished"]
    await scenario.assert_invariants([run_id], require_204_probe=True)


@pytest.mark.parametrize(("client", "resume"), CLIENTS)
async def test_reconnect_from_a_cursor_starts_at_the_next_seq(clean_db: str, scenario: Scenario, client: str,
                                                              resume: str) -> None:
    run_id = await scenario.start_run(steps=12, interval_ms=0)
    await scenario.wait_for_outbox([run_id])
    for k in (0, 1, 7, 12):
        await scenario.consume(run_id, from_seq=k, prefix=f"from{k}-", resume=resume, open_stream=READERS[client])
        first = scenario.seqs(run_id, consumer=f"from{k}-0")[0]
        assert first == k + 1, f"a reconnect from cursor {k} started at seq {first}, not {k + 1}"
    await scenario.assert_invariants([run_id], BACKFILL)  # every client joined after the end


@pytest.mark.needs("last_event_id", "x_accel_buffering")
async def test_last_event_id_wins_over_from_seq(clean_db: str, scenario: Scenario) -> None:
    run_id = await scenario.start_run(steps=10, interval_ms=0)
    await scenario.wait_for_outbox([run_id])
    async with scenario.http() as client:
        async with client.stream("GET", f"/api/agents/runs/{run_id}/stream?fromSeq=2",
                                 headers={"Last-Event-ID": "7"}) as resp:
            ids = [line for line in [ln async for ln in resp.aiter_lines()] if line.startswith("id:")]
    assert resp.headers["content-type"].startswith("text/event-stream") and "no-cache" in resp.headers["cache-control"]
    assert ids[0] == "id: 8" and ids[-1] == "id: 12"
    async with scenario.http(direct=True) as client:  # nginx takes X-Accel-Buffering for itself, as it should
        async with client.stream("GET", f"/api/agents/runs/{run_id}/stream?fromSeq=2") as direct:
            assert direct.headers.get("x-accel-buffering") == "no", "the service does not send X-Accel-Buffering: no"


async def test_a_cursor_at_or_past_the_terminal_event_gets_204(clean_db: str, scenario: Scenario) -> None:
    run_id = await scenario.start_run(steps=3, interval_ms=0)
    await scenario.wait_for_outbox([run_id])
    url = f"/api/agents/runs/{run_id}/stream"
    async with scenario.http() as client:
        at_terminal = await client.get(url, params={"fromSeq": 5})
        past_terminal = await client.get(url, headers={"Last-Event-ID": "9"})
        before_terminal = await client.get(url, params={"fromSeq": 4})
    assert (at_terminal.status_code, past_terminal.status_code) == (204, 204)
    assert before_terminal.status_code == 200 and "id: 5" in before_terminal.text


@pytest.mark.needs("append_endpoint", "cancel")
async def test_concurrent_appenders_leave_no_gap(clean_db: str, scenario: Scenario) -> None:
    # The queue worker is held so only the 8 appenders write: seq must be exactly 1..1600.
    with scenario.nemesis.paused("queue-worker-0"):
        run_id = await scenario.start_run()
        async with scenario.client(timeout_s=30) as client:
            async def appender(i: int) -> list[int]:
                ops = [await client.append_event(run_id, "Appended", {"appender": i, "n": n}) for n in range(200)]
                return [op.value["seq"] for op in ops if op.type == "ok"]

            per_appender = await asyncio.gather(*(appender(i) for i in range(8)))
            assert (await client.cancel(run_id)).type == "ok"
    for i, seqs in enumerate(per_appender):
        assert len(seqs) == 200, f"appender {i}: {200 - len(seqs)} of its appends were refused"
        assert seqs == sorted(seqs), f"appender {i} got seqs out of order: one seq was handed out twice or late"
    assert sorted(s for seqs in per_appender for s in seqs) == list(range(1, 1601))
    await scenario.assert_invariants([run_id], ("gapless", "outbox_converged"))


@pytest.mark.needs("append_endpoint", "cancel")
async def test_append_after_the_terminal_event_is_refused(clean_db: str, scenario: Scenario) -> None:
    run_id = await scenario.start_run(steps=2, interval_ms=0)
    await scenario.consume(run_id)  # the terminal event is seen first
    async with scenario.client() as client:
        late = await client.append_event(run_id, "RunStep", {"late": True})
        cancel = await client.cancel(run_id)
    assert late.type == "fail" and late.value["status"] == 409 and "Non-monotonic seq append" in str(late.error)
    assert cancel.type == "fail" and cancel.value["status"] == 409
    # A run of a few appends: its outbox converges in well under a second.
    await scenario.assert_invariants([run_id], ("gapless", "outbox_converged", "no_append_after_terminal"), wait_s=5)


async def test_reset_peer_mid_stream_loses_and_duplicates_nothing(clean_db: str, scenario: Scenario) -> None:
    run_id = await scenario.start_run(steps=80, interval_ms=20)
    clients = [scenario.consume(run_id, 2, prefix="q", backoff_initial_s=0.05),
               scenario.consume(run_id, 2, prefix="h", resume="last_event_id", backoff_initial_s=0.05),
               scenario.consume(run_id, 2, prefix="x", resume="last_event_id", backoff_initial_s=0.05,
                                open_stream=open_httpx_sse)]
    for cut in range(2):
        seen = len(scenario.seqs(run_id))
        await scenario.until(lambda: len(scenario.seqs(run_id)) >= seen + 30, 10, f"frames to flow before cut {cut}")
        # reset_peer resets a connection when its next bytes pass: keep it long enough for a frame.
        with scenario.nemesis.toxic("sse", ResetPeer(timeout=0)):
            await scenario.hold(0.3)
    await asyncio.gather(*clients)
    cuts = scenario.resumptions(run_id)
    assert any(r.consumer.startswith("x") for r in cuts), f"the fault never cut an httpx-sse stream: {cuts}"
    # Every cut consumer reconnected from the cursor it had and went on from the next seq.
    assert all(r.cursor is not None and r.next_cursor == r.cursor and r.resumed_at == r.cursor + 1
               for r in cuts), cuts
    await scenario.assert_invariants([run_id])


@pytest.mark.needs("sse_retry")
async def test_httpx_sse_takes_the_streams_retry_and_resumes_after_a_cut(stack_factory: Callable[..., LocalStack],
                                                                        scenario: Scenario) -> None:
    # The stream opens with a data-less `retry:` block, which httpx-sse (unlike EventSource) yields.
    retry_ms, backoff_s = 500, 5.0
    s = scenario.on(stack_factory(sse_retry_ms=retry_ms))
    run_id = await s.start_run(steps=40, interval_ms=50)
    consuming = s.consume(run_id, prefix="x", resume="last_event_id", backoff_initial_s=backoff_s,
                          probe_after_terminal=True, open_stream=open_httpx_sse)
    await s.until(lambda: len(s.seqs(run_id)) >= 5, 10, "the first frames")
    with s.nemesis.down("sse"):  # closes the open stream for sure, refuses new ones
        await s.hold(0.2)
    [outcome] = await consuming
    assert outcome.reached_terminal and outcome.connections >= 3, outcome  # cut, resumed, probed
    assert s.seqs(run_id) == list(range(1, 43))  # no frame for the retry block
    conns = s.conns(run_id)
    # Every pause between requests was the stream's retry, never the consumer's own backoff.
    pauses = [b.opened.mono - a.closed.mono for a, b in zip(conns, conns[1:]) if a.closed and b.opened]
    assert len(pauses) == len(conns) - 1 and all(retry_ms / 1000 <= p < backoff_s for p in pauses), pauses
    await s.assert_invariants([run_id], require_204_probe=True)


async def test_crash_between_publish_and_mark_republishes_without_duplicate_delivery(
        clean_db: str, scenario: Scenario) -> None:
    worker = scenario.stack.process("outbox-worker-0")
    # Without failpoints: the outbox's process SIGKILLed mid-stream instead (the nearest real crash).
    with scenario.nemesis.failpoint("outbox-worker-0", "outbox.after_publish", "1*crash", or_kill=True) as crash:
        run_id = await scenario.start_run(steps=30, interval_ms=10)
        consuming = scenario.consume(run_id, 2)
        await scenario.until(lambda: not worker.running, 20, "the outbox worker to crash")
    scenario.runbook.restart_outbox()  # the operator's "restart outbox worker"
    await consuming
    result = await scenario.assert_invariants([run_id], BACKFILL)  # the run's live frames all fall in the crash
    if not crash.replaced:  # only the failpoint is sure to land between a publish and its mark
        assert result.evidence["no_duplicate_delivery"]["duplicate_publishes"]["republished"], \
            "the crash re-published nothing"


async def test_postgres_restart_mid_run_loses_nothing(clean_db: str, scenario: Scenario) -> None:
    run_id = await scenario.start_run(steps=60, interval_ms=20)
    consuming = scenario.consume(run_id, 2)
    before = await scenario.until(lambda: _open_with(scenario, run_id, 5), 15, "the run to be mid-way")
    with scenario.nemesis.killed("postgres"):
        await scenario.hold(0.5)
    restarted = _open_with(scenario, run_id, 0)
    outcomes = await consuming
    after = scenario.db.run(run_id)
    # The crash hit the run in flight: events appended before it, and after the restart (the run was
    # still open when PostgreSQL came back and went on to its end).
    assert restarted is not None, "the run ended before PostgreSQL was back"
    assert 0 < before.last_seq <= restarted.last_seq < after.last_seq, (before.last_seq, restarted.last_seq,
                                                                         after.last_seq)
    assert all(o.reached_terminal for o in outcomes), outcomes
    await scenario.assert_invariants([run_id], BACKFILL)  # the restart spans the run's live phase


def _open_with(scenario: Scenario, run_id: str, events: int) -> RunRow | None:
    """The run as the database has it now, if it is still open with at least `events` events."""
    run = scenario.db.run(run_id)
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
], ids=["malformed-run-id", "unknown-run", "unknown-run-stream", "body-not-json", "negative-steps", "unknown-outcome",
        "unknown-script-field", "oversized-body"])
async def test_bad_input_gets_a_4xx_with_a_message(clean_db: str, scenario: Scenario, method: str, path: str,
                                                   kwargs: dict[str, Any], status: int) -> None:
    async with scenario.http() as client:
        resp = await client.request(method, path, **kwargs)
    assert resp.status_code == status and resp.json()["error"]


@pytest.mark.parametrize("query,header", [
    ({"fromSeq": "-1"}, {}), ({"fromSeq": "abc"}, {}), ({"fromSeq": str(2**63)}, {}),
    ({}, {"Last-Event-ID": "garbage"}), ({}, {"Last-Event-ID": "-3"}),
], ids=["fromSeq=-1", "fromSeq=abc", "fromSeq=2**63", "Last-Event-ID=garbage", "Last-Event-ID=-3"])
async def test_a_bad_cursor_gets_400(clean_db: str, scenario: Scenario, query: dict[str, str],
                                     header: dict[str, str]) -> None:
    run_id = await scenario.start_run(steps=1, interval_ms=0)
    async with scenario.http() as client:
        resp = await client.get(f"/api/agents/runs/{run_id}/stream", params=query, headers=header)
    assert resp.status_code == 400 and resp.json()["error"]
