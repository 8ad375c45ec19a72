"""Runbook: "Outbox Lag" Diagnostic, as clients see it, on the real local stack. Delivered lag (an
event's `ts` to the consumer's receipt of its frame, on the harness clock with the measured
harness-to-PostgreSQL offset) has its median in the runbook's normal class (< 100 ms) and its p95 out
of the critical one in steady state (`delivered_lag`). The stack's heartbeat interval is at least a
second, so a stream that only catches up when its heartbeat timer fires delivers every event, in order,
exactly once, and still fails here."""
from __future__ import annotations

import asyncio

import pytest

from harness.checks.lag import NORMAL_MS
from harness.stack import Intervals
from harness.toolkit import Scenario

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.outbox_lag]

RUNS = 3
# Paced like test_outbox_lag: each event is published on its own, so lag is a level, not a backlog.
SCRIPT = {"steps": 15, "interval_ms": 200}


async def test_steady_state_delivered_lag_is_normal(clean_db: str, scenario: Scenario,
                                                    service_intervals: Intervals) -> None:
    assert service_intervals.heartbeat_ms >= 10 * NORMAL_MS, \
        f"heartbeat {service_intervals.heartbeat_ms} ms: heartbeat-paced delivery would pass as normal lag"
    run_ids = [await scenario.start_run(**SCRIPT) for _ in range(RUNS)]
    await asyncio.gather(*(scenario.consume(run_id, 1, prefix=f"{resume}-{i}-", resume=resume)
                           for i, run_id in enumerate(run_ids) for resume in ("from_seq", "last_event_id")))
    await scenario.assert_invariants(run_ids)
