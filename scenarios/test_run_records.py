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

from harness.history import Frame, of_kind
from harness.scenario import (
    ScenarioRecord,
    assert_invariants,
    consumer_config,
)
from harness.stack import LocalStack, wait_until
from harness.workload import ClientConfig, RunScript, RunsClient, consume_all

pytestmark = [pytest.mark.stack, pytest.mark.anyio]

CANCELLED_STEPS = 40  # long enough (4 s) to be cancelled mid-way
APPENDED_STEPS = 5


def _delivered(scenario: ScenarioRecord, run_id: str) -> int:
    return sum(1 for f in of_kind(scenario.history, Frame) if f.run_id == run_id and f.seq)


async def test_runs_ended_each_way_are_stored_read_and_counted_as_their_events(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    async with RunsClient(ClientConfig(stack.info.api_url), scenario.history) as client:
        failed = await client.start_run(RunScript(steps=5, interval_ms=50, outcome="failed"))
        cancelled = await client.start_run(RunScript(steps=CANCELLED_STEPS, interval_ms=100))
        appended = await client.start_run(RunScript(), job=False)
        run_ids = [failed, cancelled, appended]
        consuming = asyncio.ensure_future(asyncio.gather(*(
            consume_all(consumer_config(stack, deadline_s=30), scenario.history, run_id, 1, prefix=f"c{i}-")
            for i, run_id in enumerate(run_ids))))
        for step in range(APPENDED_STEPS):
            await client.append_event(appended, "RunStep", {"step": step})
        finish = await client.append_event(appended, "RunFinished", {"status": "succeeded"})
        await asyncio.to_thread(wait_until, lambda: _delivered(scenario, cancelled) >= 5, 20, "the run to be mid-way")
        cancel = await client.cancel(cancelled)
        await consuming
        reads = [await client.get_run(run_id) for run_id in run_ids]
    assert finish.type == "ok" and cancel.type == "ok", (finish, cancel)
    assert cancel.value["seq"] < CANCELLED_STEPS + 2, f"the cancel came after the run's end: {cancel}"
    assert all(read.type == "ok" for read in reads), reads
    assert_invariants(stack, scenario, run_ids)
