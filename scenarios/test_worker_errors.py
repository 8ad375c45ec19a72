"""Runbook: Emergency Contacts, "For outbox publisher failures" (transaction timeout, database errors),
on the real local stack: a worker that hits an error retries; it never stops working. Mid-run, the
outbox worker's database link stalls past OUTBOX_TX_TIMEOUT_MS (its cycle's transaction times out), or
an injected `error` fails every outbox cycle before its publish, or every queue-worker append, for a
while. During the fault the run is mid-way and nothing new is published (or appended); after it the same
workers publish and append the rest, and every consumer gets every event exactly once."""
from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager

import pytest

from harness.history import Frame, of_kind
from harness.nemesis import Timeout, armed_failpoint, link_toxic
from harness.scenario import (
    ScenarioRecord,
    assert_invariants,
    consumer_config,
    start_run,
)
from harness.stack import Intervals, LocalStack, wait_until
from harness.workload import ClientConfig, RunsClient, consume_all

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.db_faults]

STEPS = 60
INTERVAL_MS = 150  # a 9 s run: still mid-way after the longest fault below
ERROR_WINDOW_S = 1.5  # several failed cycles (or appends) with the workers' backoff
LANDED_S = 0.5  # events published (appended) just before the fault take this long to show
DEADLINE_S = 20  # consumers give up well after the run's end: a stopped worker fails the test, not its timeout
SETTLED_S = 5  # the consumers waited out the run's end already: the outbox converges within this after them


def _delivered(scenario: ScenarioRecord, run_id: str) -> int:
    """The highest seq any consumer of the run has received."""
    return max((f.seq for f in of_kind(scenario.history, Frame) if f.run_id == run_id and f.seq), default=0)


async def _last_seq(stack: LocalStack, scenario: ScenarioRecord, run_id: str) -> int:
    async with RunsClient(ClientConfig(stack.info.api_url), scenario.history) as client:
        op = await client.get_run(run_id)
    assert op.type == "ok", op
    return int(op.value["lastSeq"])


async def _through_fault(stack: LocalStack, scenario: ScenarioRecord, fault: AbstractContextManager[object],
                         hold_s: float) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """A run consumed live with `fault` held `hold_s` mid-run. Returns the run and, from LANDED_S into
    the fault to its end, (delivered before, after) and (appended before, after)."""
    run_id = await start_run(stack, scenario, steps=STEPS, interval_ms=INTERVAL_MS)
    consuming = asyncio.ensure_future(asyncio.gather(
        consume_all(consumer_config(stack, deadline_s=DEADLINE_S), scenario.history, run_id, 1, prefix="q"),
        consume_all(consumer_config(stack, deadline_s=DEADLINE_S, resume="last_event_id"), scenario.history, run_id,
                    1, prefix="h")))
    await asyncio.to_thread(wait_until, lambda: _delivered(scenario, run_id) >= 5, 20, "first frames to arrive")
    with fault:
        await asyncio.sleep(LANDED_S)
        delivered, appended = _delivered(scenario, run_id), await _last_seq(stack, scenario, run_id)
        await asyncio.sleep(hold_s - LANDED_S)
        during = (delivered, _delivered(scenario, run_id)), (appended, await _last_seq(stack, scenario, run_id))
    outcomes = [o for group in await consuming for o in group]
    assert_invariants(stack, scenario, [run_id], wait_s=SETTLED_S)
    assert all(o.reached_terminal for o in outcomes), outcomes
    return run_id, *during


def _outbox_held(run_id: str, delivered: tuple[int, int], appended: tuple[int, int]) -> None:
    """The fault hit in-flight work: the run was appending, mid-way, and nothing new was published."""
    assert delivered[1] == delivered[0], f"run {run_id}: frames {delivered} arrived while the outbox was held"
    assert appended[1] > appended[0], f"run {run_id}: nothing appended meanwhile {appended}: nothing to publish"
    assert appended[1] < STEPS + 2, f"run {run_id} had ended by the fault's end {appended}: no work was in flight"


async def test_an_outbox_stalled_past_its_transaction_timeout_publishes_again(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord, service_intervals: Intervals) -> None:
    # Timeout 0: the link passes nothing and never closes, so the cycle in flight hangs until the
    # outbox's own transaction timeout (and the server's idle-in-transaction bound) ends it.
    stall_s = service_intervals.outbox_tx_timeout_ms / 1000 + 1.5
    stalled = link_toxic(stack, scenario.history, "pg_outbox", Timeout(timeout=0))
    _outbox_held(*await _through_fault(stack, scenario, stalled, stall_s))


async def test_outbox_cycles_failing_before_publish_leave_the_worker_publishing(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    failing = armed_failpoint(stack, scenario.history, "outbox-worker-0", "outbox.before_publish", "error")
    _outbox_held(*await _through_fault(stack, scenario, failing, ERROR_WINDOW_S))


async def test_queue_appends_failing_leave_the_worker_running_the_job(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    failing = armed_failpoint(stack, scenario.history, "queue-worker-0", "queue.before_append", "error")
    run_id, _, appended = await _through_fault(stack, scenario, failing, ERROR_WINDOW_S)
    assert appended[1] == appended[0], f"run {run_id}: events were appended {appended} while every append failed"
    assert appended[1] < STEPS + 2, f"run {run_id} had ended by the fault's end {appended}: no work was in flight"
