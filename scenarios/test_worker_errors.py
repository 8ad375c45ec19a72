"""Runbook: Emergency Contacts, "For outbox publisher failures" (transaction timeout, database errors),
on the real local stack: a worker that hits an error retries; it never stops working. Mid-run, the
outbox worker's database link stalls past OUTBOX_TX_TIMEOUT_MS (its cycle's transaction times out), or
an injected `error` fails every outbox cycle before its publish, or every queue-worker append, for a
while. During the fault the run is mid-way and nothing new is published (or appended); after it the same
workers publish and append the rest, and every consumer gets every event exactly once."""
from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import NamedTuple

import pytest

from harness.nemesis import Timeout
from harness.stack import Intervals
from harness.toolkit import Scenario

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.db_faults]

STEPS = 60
INTERVAL_MS = 150  # a 9 s run: still mid-way after the longest fault below
ERROR_WINDOW_S = 1.5  # several failed cycles (or appends) with the workers' backoff, after the first
# A fault shows within this: the next cycle (or append) fails, or an event appended meanwhile stays unpublished.
TAKES_EFFECT_S = 5.0
DEADLINE_S = 20  # consumers give up well after the run's end: a stopped worker fails the test, not its timeout
SETTLED_S = 5  # the consumers waited out the run's end already: the outbox converges within this after them
OUTBOX, QUEUE = "outbox-worker-0", "queue-worker-0"


def _delivered(scenario: Scenario, run_id: str) -> int:
    """The highest seq any consumer of the run has received."""
    return max(scenario.seqs(run_id), default=0)


class FaultStart(NamedTuple):
    run_id: str
    at: float  # epoch seconds, the clock of the service's log lines
    last_seq: int  # events the run had when the fault began


TookEffect = Callable[[FaultStart], bool]


def _logged(scenario: Scenario, msg: str, process: str, **fields: str) -> TookEffect:
    """`process` has logged `msg` with these fields since the fault began."""
    return lambda start: any(all(line.obj.get(k) == v for k, v in fields.items())
                             for line in scenario.logs.lines(msg, process=process, since=start.at))


def _held_back(scenario: Scenario) -> TookEffect:
    """An event appended since the fault began is still unpublished (by then a publish the worker had
    sent before the fault has long reached the clients)."""
    def held(start: FaultStart) -> bool:
        row = scenario.db.run(start.run_id)
        return row.last_seq > start.last_seq and (row.published_max or 0) < row.last_seq

    return held


async def _through_fault(scenario: Scenario, fault: AbstractContextManager[object], took_effect: TookEffect,
                         hold_s: float) -> tuple[str, tuple[int, int], tuple[int, int]]:
    """A run consumed live with `fault` held mid-run: until `took_effect` shows the fault holding back the
    worker's work (so what was under way before it is done), then `hold_s`. Returns the run and, over
    that hold, (delivered before, after) and (appended before, after)."""
    run_id = await scenario.start_run(steps=STEPS, interval_ms=INTERVAL_MS)
    live = [scenario.consume(run_id, 1, prefix="q", deadline_s=DEADLINE_S),
            scenario.consume(run_id, 1, prefix="h", deadline_s=DEADLINE_S, resume="last_event_id")]
    await scenario.until(lambda: _delivered(scenario, run_id) >= 5, 20, "first frames to arrive")
    start = FaultStart(run_id, time.time(), scenario.db.run(run_id).last_seq)
    with fault:
        await scenario.until(lambda: took_effect(start), TAKES_EFFECT_S, "the fault to hold back the worker's work")
        await scenario.caught_up(run_id, ("q0", "h0"))
        delivered, appended = _delivered(scenario, run_id), scenario.db.run(run_id).last_seq
        await scenario.hold(hold_s)
        during = (delivered, _delivered(scenario, run_id)), (appended, scenario.db.run(run_id).last_seq)
    outcomes = [o for task in live for o in await task]
    await scenario.assert_invariants([run_id], wait_s=SETTLED_S)
    assert all(o.reached_terminal for o in outcomes), outcomes
    return run_id, *during


def _outbox_held(run_id: str, delivered: tuple[int, int], appended: tuple[int, int]) -> None:
    """The fault hit in-flight work: the run was appending, mid-way, and nothing new was published."""
    assert delivered[1] == delivered[0], f"run {run_id}: frames {delivered} arrived while the outbox was held"
    assert appended[1] > appended[0], f"run {run_id}: nothing appended meanwhile {appended}: nothing to publish"
    assert appended[1] < STEPS + 2, f"run {run_id} had ended by the fault's end {appended}: no work was in flight"


async def test_an_outbox_stalled_past_its_transaction_timeout_publishes_again(
        clean_db: str, scenario: Scenario, service_intervals: Intervals) -> None:
    # Timeout 0: the link passes nothing and never closes, so the cycle in flight hangs until the
    # outbox's own transaction timeout (and the server's idle-in-transaction bound) ends it.
    stall_s = service_intervals.outbox_tx_timeout_ms / 1000 + 1.5
    stalled = scenario.nemesis.toxic("pg_outbox", Timeout(timeout=0))
    _outbox_held(*await _through_fault(scenario, stalled, _held_back(scenario), stall_s))


async def test_outbox_cycles_failing_before_publish_leave_the_worker_publishing(
        clean_db: str, scenario: Scenario) -> None:
    failing = scenario.nemesis.failpoint(OUTBOX, "outbox.before_publish", "error")
    fired = _logged(scenario, "failpoint.fired", OUTBOX, name="outbox.before_publish")
    _outbox_held(*await _through_fault(scenario, failing, fired, ERROR_WINDOW_S))


async def test_queue_appends_failing_leave_the_worker_running_the_job(clean_db: str, scenario: Scenario) -> None:
    failing = scenario.nemesis.failpoint(QUEUE, "queue.before_append", "error")
    fired = _logged(scenario, "failpoint.fired", QUEUE, name="queue.before_append")
    run_id, _, appended = await _through_fault(scenario, failing, fired, ERROR_WINDOW_S)
    assert appended[1] == appended[0], f"run {run_id}: events were appended {appended} while every append failed"
    assert appended[1] < STEPS + 2, f"run {run_id} had ended by the fault's end {appended}: no work was in flight"
