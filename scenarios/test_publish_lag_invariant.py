"""Runbook: "Outbox Lag" Diagnostic, judged by the `lag` invariant itself. In steady state (no fault)
the publish lag of every event (`publishedAt - ts`, both on PostgreSQL's clock, from the database rows)
has its p95 in the runbook's normal class (< 100 ms), together with the delivery invariants.

test_outbox_lag's steady phase asserts the same class from `classify_lag`'s summary; here the verdict,
its counterexample (the worst sample) and its evidence come from the `lag` checker, as every other
invariant's do, so a slow publish path fails as `lag: False` with the sample that shows it."""
from __future__ import annotations

import asyncio

import pytest

from harness.checks.lag import NORMAL_MS
from harness.scenario import (
    DELIVERY,
    ScenarioRecord,
    assert_invariants,
    consumer_config,
    start_run,
)
from harness.stack import LocalStack
from harness.workload import consume_all

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.outbox_lag]

RUNS = 2
# Paced like test_outbox_lag: each event is published on its own, so lag is a level, not a backlog.
SCRIPT = {"steps": 10, "interval_ms": 300}


async def test_publish_lag_judged_by_the_lag_invariant_stays_normal(stack: LocalStack, clean_db: str,
                                                                     scenario: ScenarioRecord) -> None:
    run_ids = [await start_run(stack, scenario, **SCRIPT) for _ in range(RUNS)]
    outcomes = await asyncio.gather(*(consume_all(consumer_config(stack), scenario.history, run_id, 1,
                                                  prefix=f"c{i}-")
                                      for i, run_id in enumerate(run_ids)))
    assert all(o.reached_terminal for group in outcomes for o in group), outcomes
    assert_invariants(stack, scenario, run_ids, ("lag", *DELIVERY), lag_bound_ms=NORMAL_MS)
