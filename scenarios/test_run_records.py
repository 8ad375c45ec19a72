"""Runbook: "Metrics Reference" and the run lifecycle (`runs.state`: queued -> started -> succeeded |
failed | cancelled), on the real local stack. Runs end each way and through each append path: a job
whose script fails, a job cancelled mid-run through `POST .../cancel`, and a run without a job that the
client appends to and finishes through `POST .../events`. After each run's end its stored state and its
`GET` agree with its terminal event (`run_state`), and the service's `metric.events_inserted` and
`metric.events_published` lines agree with its rows: one of each per event, lag within tolerance of
`publishedAt - ts` (`metrics_agree`); clients get every event exactly once, in order."""
from __future__ import annotations

import asyncio

import pytest

from harness.toolkit import Scenario
from harness.workload import RunScript

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.needs("append_endpoint", "cancel")]

CANCELLED_STEPS = 40  # long enough (4 s) to be cancelled mid-way
APPENDED_STEPS = 5


async def test_runs_ended_each_way_are_stored_read_and_counted_as_their_events(
        clean_db: str, scenario: Scenario) -> None:
    async with scenario.client() as client:
        failed = await client.start_run(RunScript(steps=5, interval_ms=50, outcome="failed"))
        cancelled = await client.start_run(RunScript(steps=CANCELLED_STEPS, interval_ms=100))
        appended = await client.start_run(RunScript(), job=False)
        run_ids = [failed, cancelled, appended]
        consuming = [scenario.consume(run_id, 1, prefix=f"c{i}-", deadline_s=30) for i, run_id in enumerate(run_ids)]
        for step in range(APPENDED_STEPS):
            await client.append_event(appended, "RunStep", {"step": step})
        finish = await client.append_event(appended, "RunFinished", {"status": "succeeded"})
        await scenario.until(lambda: len(scenario.seqs(cancelled)) >= 5, 20, "the run to be mid-way")
        cancel = await client.cancel(cancelled)
        await asyncio.gather(*consuming)
        reads = [await client.get_run(run_id) for run_id in run_ids]
    assert finish.type == "ok" and cancel.type == "ok", (finish, cancel)
    assert cancel.value["seq"] < CANCELLED_STEPS + 2, f"the cancel came after the run's end: {cancel}"
    assert all(read.type == "ok" for read in reads), reads
    await scenario.assert_invariants(run_ids)
