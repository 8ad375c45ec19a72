"""Races at the edges of the stream and the append path, made deterministic with failpoints.

- Subscribe before backfill: events (with the RunFinished) published while a stream sits between its
  backfill and its live loop (`stream.after_backfill=1*sleep`) must arrive from the bus as soon as
  that window ends, not only when the outbox's mark lets a DB re-check find them (the outbox is held
  between publish and mark by `outbox.after_publish=1*hang`, so only the live path can deliver).
- Gap fill: a live event that skips ahead of what the stream sent (the lower seq was published
  before the stream subscribed and marked only after its backfill and re-checks) must be preceded
  by the missing events read from the DB. The mark is released right after a heartbeat, so the next
  heartbeat re-check is a full interval away and cannot hide a missing fill.
- Gapless seq: an append rolled back before commit (`append.before_commit=1*error`) must release its
  seq; the next append gets it.
"""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from harness.history import Frame, Heartbeat, of_kind
from harness.nemesis import armed_failpoint, paused
from harness.observer import wait_for_outbox_async
from harness.scenario import (
    BACKFILL,
    ScenarioRecord,
    assert_invariants,
    consumer_config,
)
from harness.stack import LocalStack
from harness.workload import ClientConfig, RunsClient, consume_all

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.stream_races]

WINDOW_MS = 2000  # stream.after_backfill sleep


def _frames(scenario: ScenarioRecord, run_id: str) -> list[Frame]:
    return [f for f in of_kind(scenario.history, Frame) if f.run_id == run_id and f.seq is not None]


async def _until(predicate, timeout: float, what: str, step: float = 0.01):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await asyncio.sleep(step)


def _log_lines(stack: LocalStack, process: str, msg: str, run_id: str | None = None) -> list[dict]:
    path = Path(stack.info.logs_dir) / f"{process}.log"
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if f'"{msg}"' not in line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if entry.get("msg") == msg and (run_id is None or entry.get("runId") == run_id):
            out.append(entry)
    return out


async def _new_run_with_started(stack: LocalStack, scenario: ScenarioRecord, client: RunsClient) -> str:
    """A run without a job (only the test appends) whose RunStarted (seq 1) is published and marked."""
    run_id = await client.start_run(job=False)
    started = await client.append_event(run_id, "RunStarted", {})
    assert started.type == "ok" and started.value["seq"] == 1, started
    await wait_for_outbox_async(stack.info.dsn, [run_id], 10, finished=False)
    return run_id


async def test_events_published_between_backfill_and_follow_arrive_live(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    async with RunsClient(ClientConfig(stack.info.api_url), scenario.history) as client:
        run_id = await _new_run_with_started(stack, scenario, client)
        with armed_failpoint(stack, scenario.history, "outbox-worker-0", "outbox.after_publish", "1*hang"), \
                armed_failpoint(stack, scenario.history, "api-0", "stream.after_backfill", f"1*sleep({WINDOW_MS})"):
            consuming = asyncio.ensure_future(
                consume_all(consumer_config(stack, deadline_s=20), scenario.history, run_id, 1))
            first = await _until(lambda: _frames(scenario, run_id), 5, "the backfilled RunStarted")
            window_end = first[0].mono + WINDOW_MS / 1000
            # Both events in one outbox cycle: the outbox is stopped while they are appended.
            with paused(stack, scenario.history, "outbox-worker-0"):
                step = await client.append_event(run_id, "RunStep", {"step": 0})
                done = await client.append_event(run_id, "RunFinished", {"status": "succeeded"})
            assert (step.type, done.type) == ("ok", "ok") and (step.value["seq"], done.value["seq"]) == (2, 3)
            published = await _until(lambda: [e for e in _log_lines(stack, "outbox-worker-0",
                                                                    "metric.events_published", run_id)
                                               if e["seq"] >= 2], 2, "the outbox to publish seqs 2 and 3")
            assert {e["seq"] for e in published} == {2, 3}, published
            assert time.monotonic() < window_end - 0.3, "setup too slow: the events were not published inside the window"
            # The outbox now holds the mark: only the live bus can bring seqs 2 and 3 to the stream.
            # The correct service queued them on the stream's subscription: they go out when the window ends.
            try:
                await asyncio.wait_for(asyncio.shield(consuming), timeout=window_end + 1.0 - time.monotonic())
            except TimeoutError:
                got = [f.seq for f in _frames(scenario, run_id)]
                raise AssertionError(
                    f"events published during the stream's backfill->follow window were not delivered live "
                    f"within 1 s after it (received seqs {got} while the outbox had published 2 and 3): "
                    f"the stream was not subscribed before its backfill") from None
        outcomes = await consuming
    assert all(o.reached_terminal for o in outcomes)
    frames = _frames(scenario, run_id)
    assert [f.seq for f in frames] == [1, 2, 3]
    late = [f for f in frames[1:] if f.mono > window_end + 0.5]
    assert not late, f"live events arrived more than 0.5 s after the window: {late}"
    assert_invariants(stack, scenario, [run_id], BACKFILL)  # delivery is held by failpoints on purpose


async def test_a_live_event_that_skips_ahead_is_preceded_by_the_missing_events(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    async with RunsClient(ClientConfig(stack.info.api_url), scenario.history) as client:
        run_id = await _new_run_with_started(stack, scenario, client)
        with armed_failpoint(stack, scenario.history, "outbox-worker-0", "outbox.after_publish", "1*hang"):
            assert (await client.append_event(run_id, "RunStep", {"step": 0})).value["seq"] == 2
            # seq 2 is on the bus but not marked: a stream opened now backfills only seq 1.
            await _until(lambda: _log_lines(stack, "outbox-worker-0", "metric.events_published", run_id)[1:],
                         3, "the outbox to publish seq 2")
            consuming = asyncio.ensure_future(
                consume_all(consumer_config(stack, deadline_s=20), scenario.history, run_id, 1))
            first = await _until(lambda: _frames(scenario, run_id), 3, "the backfilled RunStarted")
            assert [f.seq for f in first] == [1]
            # Past the post-backfill re-checks (0.2 s, 1.0 s), right after a heartbeat: the next
            # heartbeat (and its DB re-check) is a full interval away.
            beat = await _until(lambda: [h for h in of_kind(scenario.history, Heartbeat)
                                         if h.run_id == run_id and h.mono > first[0].mono + 0.9],
                                3, "a heartbeat after the re-checks", step=0.005)
            assert time.monotonic() - beat[0].mono < 0.2, "missed the heartbeat's phase"
            assert (await client.append_event(run_id, "RunStep", {"step": 1})).value["seq"] == 3
        # The hang is released: the outbox marks seq 2 and publishes seq 3, which reaches the stream
        # live with seq 2 never sent on it.
        assert (await client.append_event(run_id, "RunFinished", {"status": "succeeded"})).value["seq"] == 4
        outcomes = await consuming
    assert all(o.reached_terminal for o in outcomes)
    assert [f.seq for f in _frames(scenario, run_id)] == [1, 2, 3, 4]
    assert_invariants(stack, scenario, [run_id], BACKFILL)  # delivery is held by failpoints on purpose


async def test_a_rolled_back_append_releases_its_seq(stack: LocalStack, clean_db: str,
                                                     scenario: ScenarioRecord) -> None:
    async with RunsClient(ClientConfig(stack.info.api_url), scenario.history) as client:
        run_id = await client.start_run(job=False)
        with armed_failpoint(stack, scenario.history, "api-0", "append.before_commit", "1*error"):
            failed = await client.append_event(run_id, "RunStarted", {})
        # A 500 is indeterminate to the client ("info"); the error says it never committed.
        assert failed.value["status"] == 500 and "append.before_commit" in str(failed.error), failed
        seqs = []
        for kind, payload in (("RunStarted", {}), ("RunStep", {"step": 0}), ("RunFinished", {"status": "succeeded"})):
            op = await client.append_event(run_id, kind, payload)
            assert op.type == "ok", op
            seqs.append(op.value["seq"])
    assert seqs == [1, 2, 3], f"the rolled-back append kept its seq: the next appends got {seqs}"
    await consume_all(consumer_config(stack, deadline_s=20), scenario.history, run_id, 1)
    assert_invariants(stack, scenario, [run_id], BACKFILL)  # the client joins after the run has ended
