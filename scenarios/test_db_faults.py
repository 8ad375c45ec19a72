"""Runbook: Emergency Contacts, "For outbox publisher failures" (transaction timeout, connection pool),
on the real local stack, with faults made in PostgreSQL itself. `pg_terminate_backend` of every session
of the API, the outbox worker or the queue worker mid-run, while consumers stream: the process
reconnects by itself, the run completes, and every consumer gets every event exactly once. A row lock
on the run's `run_outbox` row held by another session mid-run stalls that run's publishing (nothing new
is delivered, the backlog grows) while the worker, which claims with SKIP LOCKED, keeps publishing other
runs; on release the backlog is published exactly once, well within the outbox's 5 s transaction
timeout, which is never hit. Judged by the checkers from what the consumers actually received."""
from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import psycopg
import pytest

from harness.history import Frame, of_kind
from harness.nemesis import locked_outbox, terminated_backends
from harness.observer import wait_for_outbox
from harness.scenario import (
    ScenarioRecord,
    BACKFILL,
    assert_invariants,
    consumer_config,
    start_run,
)
from harness.stack import LocalStack, wait_until
from harness.workload import consume_all

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.db_faults]

HOLD_S = 1.5  # how long the row lock is held; long against the 200 ms outbox poll
RELEASE_BOUND_S = 3.0  # the backlog clears this soon after the release: well under the 5 s tx timeout
RECONNECT_SETTLE_S = 3.0  # terminated sessions reconnect with a backoff of up to 1 s, then the API resyncs
STEPS = 60
BACKLOG = "SELECT r.lastSeq, o.nextSeq FROM run_outbox o JOIN runs r ON r.id = o.runId WHERE o.runId = %s"


def _seqs(scenario: ScenarioRecord, run_id: str) -> list[int]:
    return [f.seq for f in of_kind(scenario.history, Frame) if f.seq is not None and f.run_id == run_id]


def _row(dsn: str, sql: str, *params: object) -> tuple:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute(sql, params).fetchone()
    assert row is not None, sql
    return row


def _outbox_errors(logs_dir: Path, since: float) -> list[dict]:
    errors = []
    for path in sorted(logs_dir.glob("outbox-worker-*.log")):
        for line in path.read_text(errors="replace").splitlines():
            if '"outbox.error"' in line:
                entry = json.loads(line[line.find("{"):])
                if entry.get("timestamp", 0) >= since:
                    errors.append(entry)
    return errors


@pytest.mark.parametrize("target", ["api", "outbox-worker", "queue-worker"])
async def test_terminated_sessions_lose_and_duplicate_nothing(stack: LocalStack, clean_db: str,
                                                              scenario: ScenarioRecord, target: str) -> None:
    # A 6 s run: live frames go on for seconds after the fault and its reconnect settle, so delivered lag
    # is judged after the recovery too.
    run_id = await start_run(stack, scenario, steps=STEPS, interval_ms=100)
    consuming = asyncio.ensure_future(asyncio.gather(
        consume_all(consumer_config(stack), scenario.history, run_id, 2, prefix="q"),
        consume_all(consumer_config(stack, resume="last_event_id"), scenario.history, run_id, 1, prefix="h")))
    await asyncio.to_thread(wait_until, lambda: len(_seqs(scenario, run_id)) >= 9, 20, "first frames to arrive")
    with terminated_backends(stack, scenario.history, target) as pids:
        in_flight = _row(clean_db, "SELECT state, lastSeq FROM runs WHERE id = %s", run_id)
        await asyncio.sleep(0.5)
    assert pids, f"no session of {target} was terminated: nothing was tested"
    assert in_flight[0] == "started" and in_flight[1] < STEPS + 2, f"the run was not mid-way: {in_flight}"
    outcomes = [o for group in await consuming for o in group]
    assert all(o.reached_terminal for o in outcomes), outcomes
    state, last_seq = _row(clean_db, "SELECT state, lastSeq FROM runs WHERE id = %s", run_id)
    assert (state, last_seq) == ("succeeded", STEPS + 2), (state, last_seq)
    assert_invariants(stack, scenario, [run_id], lag_settle_s=RECONNECT_SETTLE_S)


async def test_a_locked_outbox_row_stalls_only_its_run_then_publishes_exactly_once(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    started_at = time.time()
    locked_run = await start_run(stack, scenario, steps=STEPS, interval_ms=40)
    free_run = await start_run(stack, scenario, steps=STEPS, interval_ms=40)
    consuming = asyncio.ensure_future(asyncio.gather(*(
        consume_all(consumer_config(stack, **cfg), scenario.history, run_id, 1, prefix=f"{name}-{kind}")
        for name, run_id in (("locked", locked_run), ("free", free_run))
        for kind, cfg in (("q", {}), ("h", {"resume": "last_event_id"})))))
    await asyncio.to_thread(wait_until, lambda: len(_seqs(scenario, locked_run)) >= 10, 20, "first frames to arrive")
    with locked_outbox(stack, scenario.history, locked_run) as locked:
        await asyncio.sleep(0.3)  # frames already on the wire land
        frozen, free_before = len(_seqs(scenario, locked_run)), len(_seqs(scenario, free_run))
        backlog_before = _row(clean_db, BACKLOG, locked_run)
        await asyncio.sleep(HOLD_S)
        during, free_during = len(_seqs(scenario, locked_run)) - frozen, len(_seqs(scenario, free_run)) - free_before
        backlog_after = _row(clean_db, BACKLOG, locked_run)
    released_at = time.monotonic()
    assert locked == [locked_run], locked
    assert during == 0, f"{during} frames of the locked run were delivered while its outbox row was locked"
    last_before, next_before = backlog_before
    last_after, next_after = backlog_after
    assert next_after == next_before, "the outbox advanced a locked run's cursor"
    assert last_after - next_after > last_before - next_before, \
        f"the backlog did not grow while locked: {backlog_before} -> {backlog_after}"
    assert free_during > 0, "the other run was not published meanwhile: the worker waited on the lock"
    await asyncio.to_thread(wait_for_outbox, clean_db, [locked_run], RELEASE_BOUND_S)
    assert time.monotonic() - released_at <= RELEASE_BOUND_S
    outcomes = [o for group in await consuming for o in group]
    assert all(o.reached_terminal for o in outcomes), outcomes
    assert _outbox_errors(Path(stack.info.logs_dir), started_at) == [], "the outbox hit an error (a tx timeout?)"
    assert_invariants(stack, scenario, [locked_run, free_run], BACKFILL)  # the lock spans both runs' live phase
