"""The truth checkers on the real stack: a correct run passes `metrics_agree` and `run_state`, also when a
crash re-publishes; a stored state changed behind the service's back fails `run_state`; and the outbox
wait does not take a fresh run for a finished one (issue 7, loophole 9)."""
from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import psycopg
import pytest

from harness.errors import WaitTimeout
from harness.nemesis import armed_failpoint
from harness.observer import gauge_probe, take_snapshot, wait_for_outbox, wait_for_outbox_async
from harness.scenario import ScenarioRecord, explain
from harness.stack import LocalStack, wait_until
from harness.toolkit import Scenario
from harness.workload import ClientConfig, RunsClient

pytestmark = [pytest.mark.stack, pytest.mark.anyio]
TRUTH = ("metrics_agree", "run_state")


async def _finished_run(scenario: Scenario, **script: int | str) -> str:
    run_id = await scenario.start_run(**script)
    await scenario.consume(run_id)
    await scenario.wait_for_outbox([run_id], 20)
    async with scenario.client() as client:
        assert (await client.get_run(run_id)).type == "ok"
    return run_id


def _judge(stack: LocalStack, scenario: ScenarioRecord, run_id: str) -> dict[str, Any]:
    snapshot = take_snapshot(stack.info.dsn, [run_id], Path(stack.info.logs_dir), gauge_probe(stack))
    return scenario.judge(snapshot, TRUTH).evidence


async def test_a_correct_run_agrees_with_its_metrics_and_state(stack: LocalStack, clean_db: str,
                                                               scenario: Scenario) -> None:
    run_id = await _finished_run(scenario, steps=8, interval_ms=5, outcome="failed")
    verdicts = _judge(stack, scenario, run_id)
    assert verdicts["metrics_agree"]["valid"] is True and verdicts["metrics_agree"]["rows"] == 10, verdicts
    assert verdicts["run_state"]["valid"] is True and verdicts["run_state"]["reads_compared"] == 1, verdicts
    assert set(verdicts["metrics_agree"]["backlog_gauge"].values()) == {"agrees"}, verdicts


async def test_the_backlog_gauge_is_compared_with_the_runbook_s_query(stack: LocalStack, clean_db: str,
                                                                     scenario: Scenario) -> None:
    run_id = await _finished_run(scenario, steps=2, interval_ms=0)
    with psycopg.connect(clean_db, autocommit=True) as conn:  # a started run again, its backlog -1
        conn.execute("UPDATE runs SET state = 'started' WHERE id = %s", (run_id,))
    snapshot = take_snapshot(clean_db, [run_id], Path(stack.info.logs_dir), gauge_probe(stack))
    assert snapshot.backlog_gauge and snapshot.backlog_gauge[-1].value == snapshot.backlog_gauge[-1].db_value == -1.0
    verdicts = scenario.judge(snapshot, TRUTH).evidence
    assert set(verdicts["metrics_agree"]["backlog_gauge"].values()) == {"agrees"}, verdicts


async def test_a_stored_state_that_contradicts_the_terminal_event_fails(stack: LocalStack, clean_db: str,
                                                                        scenario: Scenario) -> None:
    run_id = await _finished_run(scenario, steps=3, interval_ms=0, outcome="cancelled")
    with psycopg.connect(clean_db, autocommit=True) as conn:
        conn.execute("UPDATE runs SET state = 'succeeded' WHERE id = %s", (run_id,))
    verdicts = _judge(stack, scenario, run_id)
    ce = verdicts["run_state"]["counterexample"]
    assert verdicts["run_state"]["valid"] is False and ce["terminal_status"] == "cancelled", verdicts
    assert verdicts["metrics_agree"]["valid"] is True  # the lines still agree with the rows


async def test_a_crash_between_publish_and_mark_is_the_republish_s_excuse(stack: LocalStack, clean_db: str,
                                                                          scenario: Scenario) -> None:
    worker = stack.process("outbox-worker-0")
    with armed_failpoint(stack, scenario.history, "outbox-worker-0", "outbox.after_publish", "1*crash"):
        run_id = await scenario.start_run(steps=20, interval_ms=10)
        await asyncio.to_thread(wait_until, lambda: not worker.running, 20, "the outbox worker to crash")
        stack.heal()  # restarted inside the fault window, as the runbook's "restart outbox worker"
    await wait_for_outbox_async(stack.info.dsn, [run_id], 20)
    snapshot = take_snapshot(stack.info.dsn, [run_id], Path(stack.info.logs_dir))
    assert snapshot.publishes is not None and len(snapshot.publishes) > snapshot.runs[run_id].last_seq, \
        "the crash re-published nothing"
    result = scenario.judge(snapshot, TRUTH)
    assert result.valid is True, explain(result)


async def test_the_outbox_wait_waits_for_the_run_s_end(stack: LocalStack, clean_db: str,
                                                       scenario: Scenario) -> None:
    async with RunsClient(ClientConfig(stack.info.api_url), scenario.history) as client:
        run_id = await client.start_run(job=False)  # fresh: nextSeq 1, lastSeq 0, nothing will end it
        with pytest.raises(WaitTimeout):
            wait_for_outbox(stack.info.dsn, [run_id], timeout=1.0)
        wait_for_outbox(stack.info.dsn, [run_id], timeout=5.0, finished=False)  # converged, not ended
        assert (await client.append_event(run_id, "RunFinished", {"status": "failed"})).type == "ok"
    wait_for_outbox(stack.info.dsn, [run_id], timeout=10.0)
    snapshot = take_snapshot(stack.info.dsn, [run_id])
    assert snapshot.runs[run_id].state == "failed" and snapshot.runs[run_id].terminal_status == "failed"
    assert snapshot.clock_offset_s is not None and abs(snapshot.clock_offset_s) < 1.0
    assert snapshot.clock_uncertainty_s is not None and snapshot.clock_uncertainty_s < 0.05
