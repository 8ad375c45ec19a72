"""Runbook: "Run Stuck" Recovery Actions and "Manual Outbox Nudge", on the real local stack. The
last-resort cancel (UPDATE runs ... 'cancelled'; DELETE FROM run_outbox ...), run by hand while the
outbox is stuck, must end the run's open streams within a bound (a reconnect gets 204) rather than
leave them hanging; restarting a stuck outbox worker (kill, then restart) must clear its backlog, and
every client must then get every event exactly once. Judged by the checkers from what the consumers
actually received."""
from __future__ import annotations

import asyncio
import time
from pathlib import Path

import httpx
import psycopg
import pytest

from harness.history import Frame, of_kind
from harness.nemesis import killed, paused, set_failpoint
from harness.observer import take_snapshot, wait_for_outbox
from harness.observer import JobRow, job_of
from harness.scenario import (
    BACKFILL,
    DELIVERY,
    ScenarioRecord,
    assert_invariants,
    consumer_config,
    explain,
    start_run,
)
from harness.stack import LocalStack, wait_until
from harness.workload import (
    ClientConfig,
    RunsClient,
    RunScript,
    consume_all,
)

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.recovery]

STREAM_END_BOUND_S = 5.0  # open streams of a run cancelled by hand end within this
STUCK_S = 1.5  # how long the backlog is watched not moving before the restart

LAST_RESORT = (
    "UPDATE runs SET state = 'cancelled', finishedAt = NOW() WHERE id = %(run)s AND state = 'started'",
    "DELETE FROM run_outbox WHERE runId = %(run)s",
)
BACKLOG = ("SELECT r.lastSeq - o.nextSeq + 1 FROM run_outbox o JOIN runs r ON r.id = o.runId"
           " WHERE o.runId = %(run)s")


def _sql(dsn: str, statements: tuple[str, ...], run_id: str) -> list[tuple | None]:
    """The runbook's SQL, verbatim, on the direct connection (as an operator in psql would)."""
    with psycopg.connect(dsn, connect_timeout=5) as conn:  # one transaction, committed on exit
        return [conn.execute(sql, {"run": run_id}).fetchone() if sql.lstrip().startswith("SELECT")
                else conn.execute(sql, {"run": run_id}) and None for sql in statements]


def _seqs(scenario: ScenarioRecord) -> list[int]:
    return [f.seq for f in of_kind(scenario.history, Frame) if f.seq is not None]


async def test_last_resort_cancel_ends_open_streams(stack: LocalStack, clean_db: str,
                                                    scenario: ScenarioRecord) -> None:
    async with RunsClient(ClientConfig(stack.info.api_url), scenario.history) as client:
        run_id = await client.start_run(RunScript(), job=False)
        assert [(await client.append_event(run_id, "RunStep", {"n": n})).type for n in range(3)] == ["ok"] * 3
        consuming = asyncio.ensure_future(asyncio.gather(
            consume_all(consumer_config(stack), scenario.history, run_id, 2, prefix="q"),
            consume_all(consumer_config(stack, resume="last_event_id"), scenario.history, run_id, 1, prefix="h")))
        await asyncio.to_thread(wait_until, lambda: len(_seqs(scenario)) == 9, 10, "the published events")
        with paused(stack, scenario.history, "outbox-worker-0"):  # stuck: what follows is never published
            late = [(await client.append_event(run_id, "RunStep", {"n": n})).type for n in range(3, 6)]
            assert late == ["ok"] * 3
            # A worker frozen inside its transaction holds the outbox row: the DELETE then waits for it,
            # so the hold ends after a second whether or not the operator's statements are through.
            cancel = asyncio.ensure_future(asyncio.to_thread(_sql, clean_db, LAST_RESORT, run_id))
            await asyncio.wait({cancel}, timeout=1.0)
        await cancel
        cancelled_at = time.monotonic()
        done, _ = await asyncio.wait({consuming}, timeout=STREAM_END_BOUND_S + 10)
        if not done:
            consuming.cancel()
        assert done, f"open streams did not end within {STREAM_END_BOUND_S + 10:.0f}s of the last-resort cancel"
        outcomes = [o for group in consuming.result() for o in group]
    ended_after = time.monotonic() - cancelled_at
    assert ended_after <= STREAM_END_BOUND_S, f"open streams hung {ended_after:.1f}s after the cancel"
    assert all(o.stop_reason == "204" and o.last_seq == 3 for o in outcomes), outcomes
    async with httpx.AsyncClient(timeout=10) as http:
        again = await http.get(f"{stack.info.api_url}/api/agents/runs/{run_id}/stream", params={"fromSeq": 3})
        state = (await http.get(f"{stack.info.api_url}/api/agents/runs/{run_id}")).json()
    assert again.status_code == 204 and state["state"] == "cancelled", (again.status_code, state)
    frames = of_kind(scenario.history, Frame)
    for consumer in ("q0", "q1", "h0"):  # every published event exactly once; the abandoned ones never
        assert [f.seq for f in frames if f.consumer == consumer] == [1, 2, 3], consumer
    snapshot = take_snapshot(clean_db, [run_id], Path(stack.info.logs_dir))
    # The outbox row is gone, so outbox_converged does not apply; the run's end for delivery is its last
    # published event (seqs 4..6 can never be published), which exactly_once and terminal know.
    result = scenario.judge(snapshot, ("exactly_once", "ordering", "terminal", "gapless", "no_duplicate_delivery",
                                       "time_travel"))
    assert result.valid is True, explain(result)


@pytest.mark.parametrize("stuck_by", ["sigstop", "hang"])
async def test_restarting_a_stuck_outbox_worker_clears_its_backlog(stack: LocalStack, clean_db: str,
                                                                   scenario: ScenarioRecord, stuck_by: str) -> None:
    worker = "outbox-worker-0"
    if stuck_by == "sigstop":
        stack.process(worker).pause()
    else:  # a publish that never returns; the restarted worker starts without the failpoint
        set_failpoint(stack, worker, "outbox.before_publish", "hang")
    try:
        with scenario.history.fault(f"stuck:{stuck_by}", worker):
            run_id = await start_run(stack, scenario, steps=30, interval_ms=0)
            consuming = asyncio.ensure_future(asyncio.gather(
                consume_all(consumer_config(stack), scenario.history, run_id, 1, prefix="q"),
                consume_all(consumer_config(stack, resume="last_event_id"), scenario.history, run_id, 1, prefix="h")))
            await asyncio.to_thread(wait_until, lambda: _sql(clean_db, (BACKLOG,), run_id)[0] == (32,), 15,
                                    "every event appended and none published")
            await asyncio.sleep(STUCK_S)
            assert _sql(clean_db, (BACKLOG,), run_id)[0] == (32,), "the worker was not stuck"
            assert _seqs(scenario) == [], "frames arrived while the outbox was stuck"
    finally:
        with killed(stack, scenario.history, worker):  # the runbook's "restart outbox worker"
            pass
    wait_for_outbox(clean_db, [run_id], timeout=10)  # the backlog clears within a bound
    outcomes = [o for group in await consuming for o in group]
    assert all(o.reached_terminal for o in outcomes)
    assert_invariants(stack, scenario, [run_id], BACKFILL)  # live frames only come from the stuck backlog


async def test_a_killed_queue_worker_s_job_is_resumed_without_repeating_steps(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    """"If queued but not processed → restart queue worker": a worker SIGKILLed mid-job leaves its lease to
    expire; the restarted worker resumes from the event log, so every step is appended exactly once."""
    run_id = await start_run(stack, scenario, steps=30, interval_ms=50)
    consuming = asyncio.ensure_future(consume_all(consumer_config(stack), scenario.history, run_id, 1))
    await asyncio.to_thread(wait_until, lambda: len(_seqs(scenario)) >= 8, 15, "the run to be under way")
    first = job_of(clean_db, run_id)
    with killed(stack, scenario.history, "queue-worker-0"):
        await asyncio.sleep(0.3)
    # The restarted worker (another process, so another lockedBy) retook the job: a second attempt.
    retaken = await asyncio.to_thread(wait_until, lambda: _retaken(clean_db, run_id), 15, "the job to be retaken")
    outcomes = await consuming
    assert first is not None and first.state == "running" and first.attempts == 1, first
    assert retaken.locked_by != first.locked_by, (first, retaken)
    assert all(o.reached_terminal for o in outcomes)
    assert_invariants(stack, scenario, [run_id], (*DELIVERY, "steps_once"))


def _retaken(dsn: str, run_id: str) -> JobRow | None:
    job = job_of(dsn, run_id)
    return job if job is not None and job.attempts >= 2 else None
