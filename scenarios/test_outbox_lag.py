"""Runbook: "Outbox Lag" Diagnostic, on the real local stack. Publish lag is the runbook's `lag_ms`
(evt.ts -> publish) taken from the database rows (`publishedAt - ts`), never from the service's own log
lines (those are reconciled with the rows by `metrics_agree`), for this test's runs only, classified
with the runbook's thresholds by the project's `classify_lag` (normal < 100 ms, warning 100-500 ms,
critical > 500 ms or increasing). Latency on the outbox's database link (`pg_outbox`) moves the class
to warning, more latency to critical, and healing brings it back to normal; each phase judges fresh
runs, and delivery stays exactly once in every phase. Without a fault, lag is normal."""
from __future__ import annotations

import asyncio

import pytest

from harness.checks.lag import NORMAL_MS, LagSummary, classify_lag, lag_samples
from harness.nemesis import Latency, link_toxic
from harness.observer import take_snapshot
from harness.scenario import (
    BACKFILL,
    DELIVERY,
    ScenarioRecord,
    assert_invariants,
    consumer_config,
    start_run,
)
from harness.stack import LocalStack
from harness.workload import consume_all

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.outbox_lag]

# Added per response chunk on pg_outbox (downstream). Measured on this machine kind: 20 ms -> p95 lag
# ~136 ms, 50 ms -> ~362 ms, 150 ms -> ~1030 ms; these sit about 2x inside their class's bounds.
WARNING_LATENCY_MS = 35
CRITICAL_LATENCY_MS = 150
RUNS_PER_PHASE = 2
# Events paced slower than one outbox cycle under the warning latency, so each is published on its own
# and lag is a level, not a backlog that grows (a growing backlog would read as the critical trend).
SCRIPT = {"steps": 10, "interval_ms": 300}


async def _phase(stack: LocalStack, scenario: ScenarioRecord, prefix: str, earlier: tuple[str, ...] = (),
                 faulted: bool = False) -> tuple[list[str], LagSummary]:
    """Fresh runs, consumed to the end; their publish lag classified; delivery judged over the whole
    history so far (so the `earlier` phases' runs are judged again with it). Outside a fault the `lag`
    invariant judges publish lag against the normal class too, with its counterexample; under a fault
    neither lag is judged here (a fault's window reaches the history only when it ends)."""
    run_ids = [await start_run(stack, scenario, **SCRIPT) for _ in range(RUNS_PER_PHASE)]
    outcomes = await asyncio.gather(*(consume_all(consumer_config(stack), scenario.history, run_id, 1,
                                                  prefix=f"{prefix}{i}-")
                                      for i, run_id in enumerate(run_ids)))
    assert all(o.reached_terminal for group in outcomes for o in group), outcomes
    if faulted:
        assert_invariants(stack, scenario, [*earlier, *run_ids], BACKFILL)
    else:
        assert_invariants(stack, scenario, [*earlier, *run_ids], ("lag", *DELIVERY), lag_bound_ms=NORMAL_MS)
    snapshot = take_snapshot(stack.info.dsn, run_ids)
    samples = lag_samples(scenario.history, snapshot, "publish")
    expected = sum(run.last_seq for run in snapshot.runs.values())
    assert len(samples) == expected, f"{len(samples)} published rows for {expected} events"
    summary = classify_lag(samples)
    scenario.history.op("harness", "info", f"lag:{prefix}", summary.to_dict())
    return run_ids, summary


async def test_steady_state_publish_lag_is_normal(stack: LocalStack, clean_db: str,
                                                  scenario: ScenarioRecord) -> None:
    _, summary = await _phase(stack, scenario, "steady")
    assert summary.cls == "normal", summary


async def test_pg_outbox_latency_moves_lag_to_warning_then_critical_and_back(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    with link_toxic(stack, scenario.history, "pg_outbox", Latency(latency=WARNING_LATENCY_MS)):
        first, warning = await _phase(stack, scenario, "warning", faulted=True)
    with link_toxic(stack, scenario.history, "pg_outbox", Latency(latency=CRITICAL_LATENCY_MS)):
        second, critical = await _phase(stack, scenario, "critical", tuple(first), faulted=True)
    _, healed = await _phase(stack, scenario, "healed", (*first, *second))
    assert warning.cls == "warning", f"{WARNING_LATENCY_MS} ms on pg_outbox: {warning}"
    assert critical.cls == "critical" and critical.p95 > warning.p95, f"{CRITICAL_LATENCY_MS} ms: {critical}"
    assert healed.cls == "normal", f"after the heal: {healed}"
