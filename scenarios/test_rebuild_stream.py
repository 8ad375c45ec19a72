"""Runbook: "Rebuild Stream" Recovery, on the real local stack: clients reconnect from random cursors,
by `?fromSeq=` and by `Last-Event-ID`, while the run is live. Each must get `fromSeq + 1` first, then
strictly increasing seqs, every event exactly once up to `RunFinished`. The cursors are drawn from a
seeded random generator (`HARNESS_SEED`, fixed by default so CI is deterministic); half are near the
live edge, where backfill meets the live bus and the server's de-dupe matters."""
from __future__ import annotations

import asyncio
import os
import random

import pytest

from harness.toolkit import Scenario

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.rebuild_stream]

SEED = int(os.environ.get("HARNESS_SEED", "20240611"))
STEPS = 60  # seqs 1..62: RunStarted, 60 RunStep, RunFinished
LAST_SEQ = STEPS + 2
RECONNECTS = 10


@pytest.mark.parametrize("resume", ["from_seq", "last_event_id"])
async def test_reconnects_from_random_cursors_while_live_get_the_next_seq_exactly_once(
        clean_db: str, scenario: Scenario, resume: str) -> None:
    rng = random.Random(f"{SEED}-{resume}")
    run_id = await scenario.start_run(steps=STEPS, interval_ms=30)
    cursors: dict[str, int] = {}
    tasks = []
    for i in range(RECONNECTS):
        await scenario.hold(rng.uniform(0.05, 0.25))  # the clients' random arrival times: a schedule, not a wait
        edge = scenario.db.run(run_id).published_max or 0  # the runbook's step 1: the max published seq
        # Every cursor leaves at least one event to get: the next seq is what is asserted.
        k = rng.randint(max(0, edge - 3), min(edge, LAST_SEQ - 1)) if i % 2 else rng.randint(0, LAST_SEQ - 1)
        cursors[f"r{i}-0"] = k
        # By Last-Event-ID alone: the cursor goes in the header on the first request too, with no fromSeq.
        tasks.append(scenario.consume(run_id, 1, prefix=f"r{i}-", from_seq=k, resume=resume,
                                      cursor_header_from_start=resume == "last_event_id"))
    outcomes = [o for group in await asyncio.gather(*tasks) for o in group]
    assert all(o.reached_terminal for o in outcomes), [o for o in outcomes if not o.reached_terminal]
    for consumer, k in cursors.items():
        seqs = scenario.seqs(run_id, consumer=consumer)
        assert seqs[:1] == [k + 1], f"{consumer} resumed from {k} but first got {seqs[:1]} (seed {SEED})"
        assert seqs == list(range(k + 1, LAST_SEQ + 1)), f"{consumer} from {k}: {seqs} (seed {SEED})"
    await scenario.assert_invariants([run_id])
