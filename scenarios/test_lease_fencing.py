"""Lease fencing of the queue worker (runbook: "workers restart a job from lastSeq"), on the real stack.

A queue worker cut off from PostgreSQL, or frozen, for longer than its job lease loses the job: the
job is retaken (by the other worker, or by the same worker's claim loop once it is back) and resumes
from the event log. The copy that lost its lease must stop without appending, or steps are appended
twice. Each scenario proves its fault hit the job in flight (steps appended before it, the run not
finished, the lease expired or the job retaken) and then judges that every scripted step was appended
exactly once (`steps_once`) along with the delivery invariants."""
from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager

import pytest

from harness.model import Snapshot
from harness.history import History
from harness.nemesis import down, paused
from harness.observer import take_snapshot
from harness.observer import JobRow, job_of
from harness.scenario import DELIVERY, ScenarioRecord, assert_invariants, consumer_config, start_run
from harness.stack import Intervals, LocalStack, wait_until
from harness.workload import consume_all

pytestmark = [pytest.mark.stack, pytest.mark.anyio]

STEPS, INTERVAL_MS = 20, 300  # a 6 s run; the fault lands mid-way, with steps on both sides
# Between steps a job sleeps three of the worker's queue polls, so once the worker is back its claim loop
# mostly comes before the job's next append; a copy that appends (or extends) first renews its lease.
BEFORE_FAULT = 5  # steps appended before the fault
PAST_LEASE_S = 0.5  # how long after its lease ran out the worker stays cut off or frozen
RUNS = 3  # jobs in flight on the one worker: each races the claim loop, so one of them is nearly always retaken
JUDGED = (*DELIVERY, "steps_once")


def _steps(snapshot: Snapshot, run_id: str) -> int:
    return sum(e.type == "RunStep" for e in snapshot.runs[run_id].events)


async def _mid_way(dsn: str, run_ids: list[str]) -> Snapshot:
    """Wait until every job is under way (steps appended, the run not finished)."""
    def under_way() -> Snapshot | None:
        snapshot = take_snapshot(dsn, run_ids)
        return snapshot if all(_steps(snapshot, r) >= BEFORE_FAULT for r in run_ids) else None

    snapshot = await asyncio.to_thread(wait_until, under_way, 20, f"{BEFORE_FAULT} steps of every run")
    assert all(snapshot.runs[r].state == "started" for r in run_ids), "a run finished before the fault"
    return snapshot


async def _until_jobs(dsn: str, run_ids: list[str], what: str, predicate: Callable[[JobRow], bool],
                      timeout: float) -> list[JobRow]:
    def hold() -> list[JobRow] | None:
        jobs = [job_of(dsn, r) for r in run_ids]
        return jobs if all(j is not None and predicate(j) for j in jobs) else None  # type: ignore[return-value]

    return await asyncio.to_thread(wait_until, hold, timeout, what)


def _fault(kind: str, stack: LocalStack, history: History) -> AbstractContextManager[None]:
    return down(stack, history, "pg_queue") if kind == "link_down" else paused(stack, history, "queue-worker-0")


@pytest.mark.parametrize("kind", ["link_down", "sigstop"])
async def test_a_queue_worker_back_after_its_lease_expired_appends_each_step_once(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord, service_intervals: Intervals, kind: str) -> None:
    """One queue worker, its pg_queue link down (or the worker SIGSTOPped) mid-run until its jobs' leases
    expired: once back, its claim loop retakes them, and the copies that lost their leases must stop."""
    lease_s = service_intervals.job_lease_ms / 1000
    run_ids = [await start_run(stack, scenario, steps=STEPS, interval_ms=INTERVAL_MS) for _ in range(RUNS)]
    consuming = asyncio.gather(*(consume_all(consumer_config(stack), scenario.history, r, 1, prefix=f"c{i}-")
                                 for i, r in enumerate(run_ids)))
    before = await _mid_way(clean_db, run_ids)
    with _fault(kind, stack, scenario.history):
        expired = await _until_jobs(clean_db, run_ids, "every job's lease to expire",
                                    lambda j: j.lease_left_s is not None and j.lease_left_s < -PAST_LEASE_S,
                                    lease_s + 10)
        during = take_snapshot(clean_db, run_ids)
    # The fault hit work in flight: each job still running, with steps before the fault and steps left.
    assert all(j.state == "running" for j in expired), expired
    assert all(during.runs[r].state == "started" and BEFORE_FAULT <= _steps(before, r) <= _steps(during, r) < STEPS
               for r in run_ids), [(_steps(before, r), _steps(during, r), during.runs[r].state) for r in run_ids]
    outcomes = [o for group in await consuming for o in group]
    assert all(o.reached_terminal for o in outcomes), outcomes
    assert_invariants(stack, scenario, run_ids, JUDGED)


@pytest.fixture
def two_workers(stack_factory: Callable[..., LocalStack]) -> Iterator[LocalStack]:
    yield stack_factory(queue_workers=2)


async def test_a_worker_frozen_past_its_lease_stops_when_the_other_worker_has_taken_over(
        two_workers: LocalStack, scenario: ScenarioRecord) -> None:
    """Two queue workers: the one running the job is SIGSTOPped until the other has retaken the job and
    appended a step of its own, then resumed; the frozen copy must stop without appending."""
    stack, dsn = two_workers, two_workers.info.dsn
    lease_s = stack.config.service.intervals.job_lease_ms / 1000  # type: ignore[union-attr]
    with paused(stack, scenario.history, "queue-worker-1"):  # so that queue-worker-0 claims the job
        run_id = await start_run(stack, scenario, steps=STEPS, interval_ms=INTERVAL_MS)
        [first] = await _until_jobs(dsn, [run_id], "queue-worker-0 to claim the job", lambda j: j.attempts == 1, 10)
    consuming = asyncio.ensure_future(consume_all(consumer_config(stack), scenario.history, run_id, 1))
    await _mid_way(dsn, [run_id])
    with paused(stack, scenario.history, "queue-worker-0"):
        [retaken] = await _until_jobs(dsn, [run_id], "the other worker to retake the job",
                                      lambda j: j.attempts >= 2 and j.locked_by != first.locked_by, lease_s + 10)
        at_takeover = _steps(take_snapshot(dsn, [run_id]), run_id)
        await asyncio.to_thread(wait_until, lambda: _steps(take_snapshot(dsn, [run_id]), run_id) > at_takeover, 10,
                                "a step appended by the worker that took over")
    # The job was retaken in flight, as a new attempt under another worker's name, with steps left.
    assert retaken.state == "running" and retaken.locked_by is not None and at_takeover < STEPS, (retaken, at_takeover)
    outcomes = await consuming
    assert all(o.reached_terminal for o in outcomes), outcomes
    assert_invariants(stack, scenario, [run_id], JUDGED)
