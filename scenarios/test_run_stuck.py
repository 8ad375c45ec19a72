"""Runbook: "Run Stuck" Diagnostic Checklist, on the real local stack. A held outbox worker delivers
nothing past what was published and nothing unpublished, then catches up exactly once; a held queue
worker leaves the run queued until it resumes; a seq gap stops the outbox's cursor at the gap (it
never skips), nothing past it reaches a client, and the `outbox.gap` alert is logged. Judged by the
checkers from what the consumers actually received."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import psycopg
import pytest

from harness.history import Frame, of_kind
from harness.nemesis import paused
from harness.observer import take_snapshot
from harness.scenario import (
    ScenarioRecord,
    BACKFILL,
    assert_invariants,
    consumer_config,
    explain,
    start_run,
)
from harness.stack import LocalStack, wait_until
from harness.workload import (
    ClientConfig,
    RunsClient,
    consume_all,
)

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.run_stuck]

HOLD_S = 1.5  # how long a worker is held; long against the 200 ms outbox poll and 1 s heartbeat


def _seqs(scenario: ScenarioRecord, live: bool = False) -> list[int]:
    """Seqs received so far; `live`: only by the consumers connected before the hold."""
    return [f.seq for f in of_kind(scenario.history, Frame)
            if f.seq is not None and not (live and f.consumer.startswith("late"))]


def _row(dsn: str, sql: str, *params: object) -> tuple:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None, sql
    return row


async def test_held_outbox_delivers_nothing_new_then_catches_up_exactly_once(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    run_id = await start_run(stack, scenario, steps=40, interval_ms=25)
    consuming = asyncio.ensure_future(asyncio.gather(
        consume_all(consumer_config(stack), scenario.history, run_id, 2, prefix="q"),
        consume_all(consumer_config(stack, resume="last_event_id"), scenario.history, run_id, 1, prefix="h")))
    await asyncio.to_thread(wait_until, lambda: len(_seqs(scenario)) >= 9, 20, "first frames to arrive")
    with paused(stack, scenario.history, "outbox-worker-0"):
        await asyncio.sleep(0.3)  # frames already on the wire land
        frozen = len(_seqs(scenario, live=True))
        # A late joiner's backfill during the hold: only what was published (time_travel judges it).
        late = asyncio.ensure_future(consume_all(consumer_config(stack), scenario.history, run_id, 1, prefix="late"))
        await asyncio.sleep(HOLD_S)
        during = _seqs(scenario)
        live_during_hold = len(_seqs(scenario, live=True)) - frozen
        last_seq = _row(stack.info.dsn, "SELECT lastSeq FROM runs WHERE id = %s", run_id)[0]
    assert live_during_hold == 0, f"{live_during_hold} frames reached live consumers while the outbox was held"
    assert last_seq > max(during), "the hold never held back an appended event: nothing was tested"
    await consuming
    await late
    assert_invariants(stack, scenario, [run_id], BACKFILL)  # held, then caught up: no steady live phase


async def test_held_queue_worker_leaves_the_run_queued_until_it_resumes(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    with paused(stack, scenario.history, "queue-worker-0"):
        run_id = await start_run(stack, scenario, steps=10, interval_ms=10)
        consuming = asyncio.ensure_future(consume_all(consumer_config(stack), scenario.history, run_id, 2))
        await asyncio.sleep(HOLD_S)
        async with RunsClient(ClientConfig(stack.info.api_url), scenario.history) as client:
            held = await client.get_run(run_id)
        assert _seqs(scenario) == [], "frames arrived for a run no worker has started"
    assert held.type == "ok" and held.value["state"] == "queued" and held.value["lastSeq"] == 0, held.value
    outcomes = await consuming
    assert all(o.reached_terminal for o in outcomes)
    async with RunsClient(ClientConfig(stack.info.api_url), scenario.history) as client:
        done = await client.get_run(run_id)
    assert done.value["state"] == "succeeded" and done.value["lastSeq"] == 12, done.value
    assert_invariants(stack, scenario, [run_id])


def _gap_alerts(logs_dir: Path, run_id: str) -> list[dict]:
    alerts = []
    for path in sorted(logs_dir.glob("outbox-worker-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if '"outbox.gap"' in line and run_id in line:
                alerts.append(json.loads(line))
    return alerts


async def test_a_seq_gap_stops_the_outbox_at_the_gap_and_alerts(stack: LocalStack, clean_db: str,
                                                                scenario: ScenarioRecord) -> None:
    gap = 5
    with paused(stack, scenario.history, "outbox-worker-0"):
        run_id = await start_run(stack, scenario, steps=8, interval_ms=0)
        await asyncio.to_thread(wait_until, lambda: _row(clean_db, "SELECT state FROM runs WHERE id = %s",
                                                         run_id)[0] == "succeeded", 20, "the run to finish")
        _row(clean_db, "DELETE FROM run_events WHERE runId = %s AND seq = %s RETURNING seq", run_id, gap)
        consuming = asyncio.ensure_future(asyncio.gather(
            consume_all(consumer_config(stack, deadline_s=4), scenario.history, run_id, 1, prefix="q"),
            consume_all(consumer_config(stack, deadline_s=4, resume="last_event_id"), scenario.history, run_id, 1,
                        prefix="h")))
        await asyncio.sleep(0.3)
    logs = Path(stack.info.logs_dir)
    await consuming  # the consumers wait out their deadline: nothing past the gap may ever come
    next_seq, last_seq = _row(clean_db, "SELECT o.nextSeq, r.lastSeq FROM run_outbox o JOIN runs r ON r.id = o.runId"
                                        " WHERE o.runId = %s", run_id)
    assert (next_seq, last_seq) == (gap, 10), "the outbox cursor moved past the gap"
    got = _seqs(scenario)
    assert sorted(set(got)) == list(range(1, gap)), f"a client received past the gap: {sorted(set(got))}"
    await asyncio.to_thread(wait_until, lambda: bool(_gap_alerts(logs, run_id)), 15, "the outbox.gap alert")
    alert = _gap_alerts(logs, run_id)[0]
    assert alert["level"] == "alert" and alert["expectedSeq"] == gap, alert
    snapshot = take_snapshot(clean_db, [run_id], logs)
    result = scenario.judge(snapshot, ("exactly_once", "ordering", "no_duplicate_delivery", "time_travel", "gapless",
                                       "outbox_converged"), {"require_terminal": {"q": False, "h": False}},
                            expect={"gapless": False, "outbox_converged": False})  # the incident, provoked
    verdicts = {name: entry["valid"] for name, entry in result.evidence.items()}
    # Clients got the prefix exactly once; the harness sees the incident the runbook describes: a gapped
    # log and an outbox that cannot converge.
    assert verdicts == {"exactly_once": True, "ordering": True, "no_duplicate_delivery": True, "time_travel": True,
                        "gapless": False, "outbox_converged": False}, explain(result)
