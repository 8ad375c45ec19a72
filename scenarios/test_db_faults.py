"""Runbook: Emergency Contacts, "For outbox publisher failures" (transaction timeout, connection pool),
on the real local stack, with faults made in PostgreSQL itself. `pg_terminate_backend` of every session
of the API, the outbox worker or the queue worker mid-run, while consumers stream: the process
reconnects by itself, the run completes, and every consumer gets every event exactly once. A row lock
on the run's `run_outbox` row held by another session mid-run stalls that run's publishing (nothing new
is delivered, the backlog grows) while the worker, which claims with SKIP LOCKED, keeps publishing other
runs; on release the backlog is published exactly once, well within the outbox's 5 s transaction
timeout, which is never hit. Judged by the checkers from what the consumers actually received."""
from __future__ import annotations

import time

import pytest

from harness.scenario import BACKFILL
from harness.toolkit import Scenario

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.db_faults]

HOLD_S = 1.5  # how long the row lock is held; long against the 200 ms outbox poll
TERMINATED_S = 0.5  # the window recorded around the terminations, in which the sessions reconnect
RELEASE_BOUND_S = 3.0  # the backlog clears this soon after the release: well under the 5 s tx timeout
RECONNECT_SETTLE_S = 3.0  # terminated sessions reconnect with a backoff of up to 1 s, then the API resyncs
STEPS = 60
RESUME = {"q": "from_seq", "h": "last_event_id"}  # the locked-row scenario's consumers of each run, by kind


@pytest.mark.parametrize("target", ["api", "outbox-worker", "queue-worker"])
async def test_terminated_sessions_lose_and_duplicate_nothing(clean_db: str, scenario: Scenario, target: str) -> None:
    # A 6 s run: live frames go on for seconds after the fault and its reconnect settle, so delivered lag
    # is judged after the recovery too.
    run_id = await scenario.start_run(steps=STEPS, interval_ms=100)
    live = [scenario.consume(run_id, 2, prefix="q"), scenario.consume(run_id, 1, prefix="h", resume="last_event_id")]
    await scenario.until(lambda: len(scenario.seqs(run_id)) >= 9, 20, "first frames to arrive")
    with scenario.nemesis.terminated_backends(target) as pids:
        in_flight = scenario.db.run(run_id)
        await scenario.hold(TERMINATED_S)
    assert pids, f"no session of {target} was terminated: nothing was tested"
    assert in_flight.state == "started" and in_flight.last_seq < STEPS + 2, f"the run was not mid-way: {in_flight}"
    outcomes = [o for task in live for o in await task]
    assert all(o.reached_terminal for o in outcomes), outcomes
    done = scenario.db.run(run_id)
    assert (done.state, done.last_seq) == ("succeeded", STEPS + 2), done
    await scenario.assert_invariants([run_id], lag_settle_s=RECONNECT_SETTLE_S)


async def test_a_locked_outbox_row_stalls_only_its_run_then_publishes_exactly_once(
        clean_db: str, scenario: Scenario) -> None:
    started_at = time.time()
    runs = {name: await scenario.start_run(steps=STEPS, interval_ms=40) for name in ("locked", "free")}
    locked_run, free_run = runs["locked"], runs["free"]
    consuming = [scenario.consume(run_id, 1, prefix=f"{name}-{kind}", resume=resume)
                 for name, run_id in runs.items() for kind, resume in RESUME.items()]
    await scenario.until(lambda: len(scenario.seqs(locked_run)) >= 10, 20, "first frames to arrive")
    with scenario.nemesis.locked_outbox(locked_run) as locked:
        at_lock = scenario.db.run(locked_run).last_seq
        # Two events of the locked run appended under the lock: the worker has been woken for it since (and
        # skipped its row, or waits on it); what it had published by then reaches every client.
        await scenario.until(lambda: scenario.db.run(locked_run).last_seq >= at_lock + 2, 10,
                             "two events of the locked run appended under the lock")
        for name, run_id in runs.items():
            await scenario.caught_up(run_id, tuple(f"{name}-{kind}0" for kind in RESUME))
        frozen, free_before = len(scenario.seqs(locked_run)), len(scenario.seqs(free_run))
        before = scenario.db.run(locked_run)
        await scenario.hold(HOLD_S)
        during, free_during = len(scenario.seqs(locked_run)) - frozen, len(scenario.seqs(free_run)) - free_before
        after = scenario.db.run(locked_run)
    released_at = time.monotonic()
    assert locked == [locked_run], locked
    assert during == 0, f"{during} frames of the locked run were delivered while its outbox row was locked"
    assert after.next_seq == before.next_seq, "the outbox advanced a locked run's cursor"
    assert (after.backlog or 0) > (before.backlog or 0), f"the backlog did not grow while locked: {before} -> {after}"
    assert free_during > 0, "the other run was not published meanwhile: the worker waited on the lock"
    await scenario.wait_for_outbox([locked_run], RELEASE_BOUND_S)
    assert time.monotonic() - released_at <= RELEASE_BOUND_S
    outcomes = [o for task in consuming for o in await task]
    assert all(o.reached_terminal for o in outcomes), outcomes
    errors = [line.obj for line in scenario.logs.lines("outbox.error", process="outbox-worker-*", since=started_at)]
    assert errors == [], f"the outbox hit an error (a tx timeout?): {errors}"
    await scenario.assert_invariants([locked_run, free_run], BACKFILL)  # the lock spans both runs' live phase
