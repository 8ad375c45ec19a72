"""Runbook: "Run Stuck" Recovery Actions and "Manual Outbox Nudge", on the real local stack. The
last-resort cancel (UPDATE runs ... 'cancelled'; DELETE FROM run_outbox ..., run as code by
`scenario.runbook.cancel_run`, verbatim and only for a run the checklist confirms stuck), run while the
outbox is stuck, must end the run's open streams within a bound (a reconnect gets 204) rather than
leave them hanging; restarting a stuck outbox worker (the runbook's "restart outbox worker") must clear
its backlog, and every client must then get every event exactly once. Judged by the checkers from what
the consumers actually received."""
from __future__ import annotations

import asyncio
from contextlib import AbstractContextManager

import pytest

from harness.observer import JobRow
from harness.runbook import Diagnosis
from harness.scenario import BACKFILL, DELIVERY, explain
from harness.toolkit import Scenario
from harness.workload import RunScript

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.recovery]

OUTBOX = "outbox-worker-0"
STREAM_END_BOUND_S = 5.0  # open streams of a run cancelled by hand end within this
STUCK_AFTER_S = 1.0  # the outbox behind this long confirms the run stuck (the runbook's 30 s, scaled down)
# How long the outbox stays frozen into the cancel: a worker frozen inside its transaction holds the
# outbox row, so the runbook's DELETE waits for it until the worker moves again.
CANCEL_HOLD_S = 1.0
STUCK_S = 1.5  # how long the backlog is watched not moving before the restart
DEAD_S = 0.3  # how long the killed queue worker stays dead


def _confirmed_stuck(scenario: Scenario, run_id: str) -> Diagnosis | None:
    """The checklist's diagnosis once it shows the outbox behind for `STUCK_AFTER_S`."""
    diagnosis = scenario.runbook.diagnose(run_id)
    age = diagnosis.evidence.get("eventAgeSeconds", 0)
    return diagnosis if diagnosis.verdict == "outbox_stuck" and age >= STUCK_AFTER_S else None


@pytest.mark.needs("append_endpoint")
async def test_last_resort_cancel_ends_open_streams(clean_db: str, scenario: Scenario) -> None:
    async with scenario.client() as client:
        run_id = await client.start_run(RunScript(), job=False)
        assert [(await client.append_event(run_id, "RunStep", {"n": n})).type for n in range(3)] == ["ok"] * 3
        live = [scenario.consume(run_id, 2, prefix="q"),
                scenario.consume(run_id, 1, prefix="h", resume="last_event_id")]
        await scenario.until(lambda: len(scenario.seqs(run_id)) == 9, 10, "the published events")
        with scenario.nemesis.paused(OUTBOX):  # stuck: what follows is never published
            late = [(await client.append_event(run_id, "RunStep", {"n": n})).type for n in range(3, 6)]
            assert late == ["ok"] * 3
            await scenario.until(lambda: _confirmed_stuck(scenario, run_id), 10,
                                 "the checklist to confirm the run stuck")
            # Synchronous and maybe waiting on the row lock: off the loop, so the consumers keep reading.
            cancelling = asyncio.ensure_future(asyncio.to_thread(scenario.runbook.cancel_run, run_id,
                                                                 stuck_after_s=STUCK_AFTER_S))
            await scenario.hold(CANCEL_HOLD_S)
        cancel = await cancelling
        _, hanging = await asyncio.wait(live, timeout=STREAM_END_BOUND_S)
        for task in hanging:
            task.cancel()
        assert not hanging, f"open streams did not end within {STREAM_END_BOUND_S:.0f}s of the last-resort cancel"
        outcomes = [o for task in live for o in task.result()]
        [again] = await scenario.consume(run_id, 1, prefix="again", from_seq=3)  # a reconnect after the cancel
        state = await client.get_run(run_id)
    assert cancel.cancelled and cancel.reason.startswith("outbox stuck"), cancel
    assert all(o.stop_reason == "204" and o.last_seq == 3 for o in outcomes), outcomes
    assert (again.stop_reason, again.connections) == ("204", 1), again
    assert state.type == "ok" and state.value["state"] == "cancelled", state.value
    for consumer in ("q0", "q1", "h0"):  # every published event exactly once; the abandoned ones never
        assert scenario.seqs(run_id, consumer=consumer) == [1, 2, 3], consumer
    # The outbox row is gone, so outbox_converged does not apply; the run's end for delivery is its last
    # published event (seqs 4..6 can never be published), which exactly_once and terminal know.
    result = scenario.judge(scenario.snapshot([run_id]), ("exactly_once", "ordering", "terminal", "gapless",
                                                          "no_duplicate_delivery", "time_travel"))
    assert result.valid is True, explain(result)


def _stuck(scenario: Scenario, stuck_by: str) -> AbstractContextManager[None]:
    if stuck_by == "sigstop":
        return scenario.nemesis.paused(OUTBOX)
    # A publish that never returns; nothing disarms it, the restarted worker starts without it.
    return scenario.nemesis.failpoint_until_restart(OUTBOX, "outbox.before_publish", "hang")


@pytest.mark.parametrize("stuck_by", ["sigstop", "hang"])
async def test_restarting_a_stuck_outbox_worker_clears_its_backlog(clean_db: str, scenario: Scenario,
                                                                   stuck_by: str) -> None:
    with _stuck(scenario, stuck_by):
        try:
            run_id = await scenario.start_run(steps=30, interval_ms=0)
            live = [scenario.consume(run_id, 1, prefix="q"),
                    scenario.consume(run_id, 1, prefix="h", resume="last_event_id")]
            await scenario.until(lambda: scenario.db.run(run_id).backlog == 32, 15,
                                 "every event appended and none published")
            await scenario.hold(STUCK_S)
            held, diagnosis, during = scenario.db.run(run_id), scenario.runbook.diagnose(run_id), scenario.seqs(run_id)
        finally:  # the runbook's "restart outbox worker", also after a failed wait: no stuck worker outlives the test
            await asyncio.to_thread(scenario.runbook.restart_outbox)
    assert held.backlog == 32, f"the worker was not stuck: {held}"
    assert during == [], "frames arrived while the outbox was stuck"
    assert diagnosis.verdict == "outbox_stuck" and diagnosis.evidence["nextSeq"] == 1, diagnosis
    await scenario.wait_for_outbox([run_id], timeout=10)  # the backlog clears within a bound
    outcomes = [o for task in live for o in await task]
    assert all(o.reached_terminal for o in outcomes)
    await scenario.assert_invariants([run_id], BACKFILL)  # live frames only come from the stuck backlog


async def test_a_killed_queue_worker_s_job_is_resumed_without_repeating_steps(clean_db: str,
                                                                              scenario: Scenario) -> None:
    """"If queued but not processed → restart queue worker": a worker SIGKILLed mid-job leaves its lease to
    expire; the restarted worker resumes from the event log, so every step is appended exactly once."""
    run_id = await scenario.start_run(steps=30, interval_ms=50)
    consuming = scenario.consume(run_id, 1)
    await scenario.until(lambda: len(scenario.seqs(run_id)) >= 8, 15, "the run to be under way")
    first = scenario.db.job(run_id)
    with scenario.nemesis.killed("queue-worker-0"):
        await scenario.hold(DEAD_S)

    def retaken() -> JobRow | None:
        job = scenario.db.job(run_id)
        return job if job is not None and job.attempts >= 2 else None

    # The restarted worker (another process, so another lockedBy) retook the job: a second attempt.
    second = await scenario.until(retaken, 15, "the job to be retaken")
    outcomes = await consuming
    assert first is not None and first.state == "running" and first.attempts == 1, first
    assert second is not None and second.locked_by != first.locked_by, (first, second)
    assert all(o.reached_terminal for o in outcomes)
    await scenario.assert_invariants([run_id], (*DELIVERY, "steps_once"))
