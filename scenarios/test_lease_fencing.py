"""Lease fencing of the queue worker (runbook: "workers restart a job from lastSeq"), on the real stack.

A queue worker cut off from PostgreSQL, or frozen, for longer than its job lease loses the job: the
job is retaken (by the other worker, or by the same worker's claim loop once it is back) and resumes
from the event log. The copy that lost its lease must stop without appending, or steps are appended
twice. Each scenario proves its fault hit the job in flight (steps appended before it, the run not
finished, the lease expired or the job retaken) and then judges that every scripted step was appended
exactly once (`steps_once`) along with the delivery invariants."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager

import pytest

from harness.observer import JobRow, RunRow
from harness.scenario import DELIVERY
from harness.stack import Intervals, LocalStack
from harness.toolkit import Scenario

pytestmark = [pytest.mark.stack, pytest.mark.anyio]

STEPS, INTERVAL_MS = 20, 300  # a 6 s run; the fault lands mid-way, with steps on both sides
# Between steps a job sleeps three of the worker's queue polls, so once the worker is back its claim loop
# mostly comes before the job's next append; a copy that appends (or extends) first renews its lease.
BEFORE_FAULT = 5  # steps appended before the fault
PAST_LEASE_S = 0.5  # how long after its lease ran out the worker stays cut off or frozen
RUNS = 3  # jobs in flight on the one worker: each races the claim loop, so one of them is nearly always retaken
JUDGED = (*DELIVERY, "steps_once")


def _steps(row: RunRow) -> int:
    """Steps appended so far: until its end a run's events are its RunStarted, then one per step."""
    return max(row.events - 1, 0)


async def _mid_way(scenario: Scenario, run_ids: list[str]) -> dict[str, RunRow]:
    """Wait until every job is under way (steps appended, the run not finished)."""
    def under_way() -> dict[str, RunRow]:
        rows = {r: scenario.db.run(r) for r in run_ids}
        return rows if all(_steps(row) >= BEFORE_FAULT for row in rows.values()) else {}

    rows = await scenario.until(under_way, 20, f"{BEFORE_FAULT} steps of every run")
    assert all(row.state == "started" for row in rows.values()), f"a run finished before the fault: {rows}"
    return rows


def _jobs(scenario: Scenario, run_ids: list[str], predicate: Callable[[JobRow], bool]) -> list[JobRow]:
    """The runs' jobs once every one of them satisfies `predicate`; until then none (a wait goes on)."""
    jobs = [job for job in map(scenario.db.job, run_ids) if job is not None and predicate(job)]
    return jobs if len(jobs) == len(run_ids) else []


def _fault(kind: str, scenario: Scenario) -> AbstractContextManager[None]:
    return scenario.nemesis.down("pg_queue") if kind == "link_down" else scenario.nemesis.paused("queue-worker-0")


@pytest.mark.parametrize("kind", ["link_down", "sigstop"])
async def test_a_queue_worker_back_after_its_lease_expired_appends_each_step_once(
        clean_db: str, scenario: Scenario, service_intervals: Intervals, kind: str) -> None:
    """One queue worker, its pg_queue link down (or the worker SIGSTOPped) mid-run until its jobs' leases
    expired: once back, its claim loop retakes them, and the copies that lost their leases must stop."""
    lease_s = service_intervals.job_lease_ms / 1000
    run_ids = [await scenario.start_run(steps=STEPS, interval_ms=INTERVAL_MS) for _ in range(RUNS)]
    consuming = [scenario.consume(r, 1, prefix=f"c{i}-") for i, r in enumerate(run_ids)]
    before = await _mid_way(scenario, run_ids)
    with _fault(kind, scenario):
        expired = await scenario.until(
            lambda: _jobs(scenario, run_ids, lambda j: j.lease_left_s is not None and j.lease_left_s < -PAST_LEASE_S),
            lease_s + 10, "every job's lease to expire")
        during = {r: scenario.db.run(r) for r in run_ids}
    # The fault hit work in flight: each job still running, with steps before the fault and steps left.
    assert all(j.state == "running" for j in expired), expired
    assert all(during[r].state == "started" and BEFORE_FAULT <= _steps(before[r]) <= _steps(during[r]) < STEPS
               for r in run_ids), [(_steps(before[r]), _steps(during[r]), during[r].state) for r in run_ids]
    outcomes = [o for task in consuming for o in await task]
    assert all(o.reached_terminal for o in outcomes), outcomes
    await scenario.assert_invariants(run_ids, JUDGED)


async def test_a_worker_frozen_past_its_lease_stops_when_the_other_worker_has_taken_over(
        stack_factory: Callable[..., LocalStack], scenario: Scenario) -> None:
    """Two queue workers: the one running the job is SIGSTOPped until the other has retaken the job and
    appended a step of its own, then resumed; the frozen copy must stop without appending."""
    stack = stack_factory(queue_workers=2)
    s = scenario.on(stack)
    lease_s = stack.config.service.intervals.job_lease_ms / 1000  # type: ignore[union-attr]
    with s.nemesis.paused("queue-worker-1"):  # so that queue-worker-0 claims the job
        run_id = await s.start_run(steps=STEPS, interval_ms=INTERVAL_MS)
        [first] = await s.until(lambda: _jobs(s, [run_id], lambda j: j.attempts == 1), 10,
                                "queue-worker-0 to claim the job")
    consuming = s.consume(run_id, 1)
    await _mid_way(s, [run_id])
    with s.nemesis.paused("queue-worker-0"):
        [retaken] = await s.until(
            lambda: _jobs(s, [run_id], lambda j: j.attempts >= 2 and j.locked_by != first.locked_by), lease_s + 10,
            "the other worker to retake the job")
        at_takeover = _steps(s.db.run(run_id))
        await s.until(lambda: _steps(s.db.run(run_id)) > at_takeover, 10,
                      "a step appended by the worker that took over")
    # The job was retaken in flight, as a new attempt under another worker's name, with steps left.
    assert retaken.state == "running" and retaken.locked_by is not None and at_takeover < STEPS, (retaken, at_takeover)
    outcomes = await consuming
    assert all(o.reached_terminal for o in outcomes), outcomes
    await s.assert_invariants([run_id], JUDGED)
