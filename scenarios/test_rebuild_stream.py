"""Runbook: "Rebuild Stream" Recovery, on the real local stack: clients reconnect from random cursors,
by `?fromSeq=` and by `Last-Event-ID`, while the run is live. Each must get `fromSeq + 1` first, then
strictly increasing seqs, every event exactly once up to `RunFinished`. The cursors are drawn from a
seeded random generator (`HARNESS_SEED`, fixed by default so CI is deterministic); half are near the
live edge, where backfill meets the live bus and the server's de-dupe matters."""
from __future__ import annotations

import asyncio
import os
import random

import psycopg
import pytest

from harness.history import Frame, of_kind
from harness.scenario import (
    ScenarioRecord,
    assert_invariants,
    consumer_config,
    start_run,
)
from harness.stack import LocalStack
from harness.workload import (
    consume_all,
)

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.rebuild_stream]

SEED = int(os.environ.get("HARNESS_SEED", "20240611"))
STEPS = 60  # seqs 1..62: RunStarted, 60 RunStep, RunFinished
RECONNECTS = 10


def _published_max(dsn: str, run_id: str) -> int:
    """The runbook's step 1: the max published seq, from the database."""
    with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
        row = conn.execute("SELECT MAX(seq) FROM run_events WHERE runId = %s AND publishedAt IS NOT NULL",
                           (run_id,)).fetchone()
    return int(row[0] or 0) if row else 0


@pytest.mark.parametrize("resume", ["from_seq", "last_event_id"])
async def test_reconnects_from_random_cursors_while_live_get_the_next_seq_exactly_once(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord, resume: str) -> None:
    rng = random.Random(f"{SEED}-{resume}")
    run_id = await start_run(stack, scenario, steps=STEPS, interval_ms=30)
    # By Last-Event-ID alone: the cursor goes in the header on the first request too, with no fromSeq.
    config = consumer_config(stack, resume=resume, cursor_header_from_start=resume == "last_event_id")
    cursors: dict[str, int] = {}
    tasks = []
    for i in range(RECONNECTS):
        await asyncio.sleep(rng.uniform(0.05, 0.25))
        edge = await asyncio.to_thread(_published_max, clean_db, run_id)
        k = rng.randint(max(0, edge - 3), edge) if i % 2 else rng.randint(0, STEPS + 1)
        cursors[f"r{i}-0"] = k
        tasks.append(asyncio.ensure_future(consume_all(config, scenario.history, run_id, 1, from_seq=k,
                                                       prefix=f"r{i}-")))
    outcomes = [o for group in await asyncio.gather(*tasks) for o in group]
    assert all(o.reached_terminal for o in outcomes), [o for o in outcomes if not o.reached_terminal]
    frames = [f for f in of_kind(scenario.history, Frame) if f.seq is not None]
    for consumer, k in cursors.items():
        seqs = [f.seq for f in frames if f.consumer == consumer]
        assert seqs[:1] == [k + 1], f"{consumer} resumed from {k} but first got {seqs[:1]} (seed {SEED})"
        assert seqs == list(range(k + 1, STEPS + 3)), f"{consumer} from {k}: {seqs} (seed {SEED})"
    assert_invariants(stack, scenario, [run_id])
