"""Runbook: "Outbox Lag" Diagnostic, on the real local stack. Publish lag is the runbook's `lag_ms`
(evt.ts -> publish) taken from the database rows (`publishedAt - ts`), never from the service's own log
lines (those are reconciled with the rows by `metrics_agree`), for this test's runs only, classified
with the runbook's thresholds by the project's `classify_lag` (normal < 100 ms, warning 100-500 ms,
critical > 500 ms or increasing). Latency on the outbox's database link (`pg_outbox`) moves the class
to warning, more latency to critical, and healing brings it back to normal; each phase judges fresh
runs, and delivery stays exactly once in every phase. Without a fault, lag is normal. The latencies
are calibrated at the start: how much lag a millisecond on `pg_outbox` adds is measured on this stack."""
from __future__ import annotations

import asyncio

import pytest

from harness.checks.lag import NORMAL_MS, LagSummary, classify_lag, lag_samples
from harness.nemesis import Latency
from harness.scenario import BACKFILL, DELIVERY
from harness.stack import LocalStack
from harness.toolkit import Scenario
from harness.toolkit.calibration import (
    CRITICAL_TARGET_MS,
    WARNING_TARGET_MS,
    LagResponse,
    latency_for_lag,
    measure_lag_response,
    measuring_scenario,
)

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.outbox_lag]

RUNS_PER_PHASE = 2
# Events paced slower than one outbox cycle under the warning latency (~WARNING_TARGET_MS),
# so each is published on its own and lag is a level, not a backlog that grows (a growing backlog would
# read as the critical trend).
SCRIPT = {"steps": 10, "interval_ms": 300}


@pytest.fixture(scope="module")  # the scope of the anyio backend that runs it
async def lag_response(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> LagResponse:
    """Publish lag of a phase's runs on the idle stack and its rise per ms of latency on `pg_outbox`."""
    measuring = measuring_scenario(stack, tmp_path_factory.mktemp("calibration"))
    return await measure_lag_response(measuring, SCRIPT, runs=RUNS_PER_PHASE)


async def _phase(scenario: Scenario, prefix: str, earlier: tuple[str, ...] = (),
                 faulted: bool = False) -> tuple[list[str], LagSummary]:
    """Fresh runs, consumed to the end; their publish lag classified; delivery judged over the whole
    history so far (so the `earlier` phases' runs are judged again with it). Outside a fault the `lag`
    invariant judges publish lag against the normal class too, with its counterexample; under a fault
    neither lag is judged here (a fault's window reaches the history only when it ends)."""
    run_ids = [await scenario.start_run(**SCRIPT) for _ in range(RUNS_PER_PHASE)]
    consuming = [scenario.consume(run_id, 1, prefix=f"{prefix}{i}-") for i, run_id in enumerate(run_ids)]
    outcomes = await asyncio.gather(*consuming)
    assert all(o.reached_terminal for group in outcomes for o in group), outcomes
    if faulted:
        await scenario.assert_invariants([*earlier, *run_ids], BACKFILL)
    else:
        await scenario.assert_invariants([*earlier, *run_ids], ("lag", *DELIVERY), lag_bound_ms=NORMAL_MS)
    snapshot = scenario.snapshot(run_ids)
    samples = lag_samples(scenario.history, snapshot, "publish")
    expected = sum(run.last_seq for run in snapshot.runs.values())
    assert len(samples) == expected, f"{len(samples)} published rows for {expected} events"
    summary = classify_lag(samples)
    scenario.history.op("harness", "info", f"lag:{prefix}", summary.to_dict())
    return run_ids, summary


async def test_steady_state_publish_lag_is_normal(clean_db: str, scenario: Scenario) -> None:
    _, summary = await _phase(scenario, "steady")
    assert summary.cls == "normal", summary


async def test_pg_outbox_latency_moves_lag_to_warning_then_critical_and_back(
        clean_db: str, scenario: Scenario, lag_response: LagResponse) -> None:
    warning_ms, critical_ms = (latency_for_lag(target, lag_response) for target in (WARNING_TARGET_MS,
                                                                                    CRITICAL_TARGET_MS))
    scenario.history.op("harness", "info", "lag:calibration",
                        {**vars(lag_response), "warning_latency_ms": warning_ms, "critical_latency_ms": critical_ms})
    with scenario.nemesis.toxic("pg_outbox", Latency(latency=warning_ms)):
        first, warning = await _phase(scenario, "warning", faulted=True)
    with scenario.nemesis.toxic("pg_outbox", Latency(latency=critical_ms)):
        second, critical = await _phase(scenario, "critical", tuple(first), faulted=True)
    _, healed = await _phase(scenario, "healed", (*first, *second))
    assert warning.cls == "warning", f"{warning_ms} ms on pg_outbox ({lag_response}): {warning}"
    assert critical.cls == "critical" and critical.p95 > warning.p95, f"{critical_ms} ms ({lag_response}): {critical}"
    assert healed.cls == "normal", f"after the heal: {healed}"
