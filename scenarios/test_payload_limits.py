"""The bus's payload limit (docs/CONTRACTS.md "Bus"), on the real local stack. A PostgreSQL NOTIFY payload
is limited to 8000 bytes, so the outbox leaves `event` out of a bus message that would exceed 7000 bytes
and the API reads that event's row by (runId, seq). Runs whose step events make bus messages just under,
at and just over 7000 and 8000 bytes, and one of about 100 KB, are consumed live while they run and by
backfill after their end: every consumer gets every event exactly once, in order, with the database's
content, live ones in the runbook's normal lag class, and the outbox publishes all of it."""
from __future__ import annotations

import asyncio
import json

import pytest

from harness.toolkit import Scenario
from harness.workload import ConsumerOutcome, ResumeMode, RunScript

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.failure_patterns]

STEPS = 3  # seq and step stay one digit, so every step event of a run has the same size
# The contract's bus message of a RunStep, written compactly, without its `data` characters.
ENVELOPE = len(json.dumps({
    "runId": "00000000-0000-0000-0000-000000000000", "seq": 2, "type": "RunStep", "ts": "2026-01-01T00:00:00.000000Z",
    "event": {"runId": "00000000-0000-0000-0000-000000000000", "seq": 2, "type": "RunStep",
              "ts": "2026-01-01T00:00:00.000000Z", "payload": {"step": 0, "data": ""}}}, separators=(",", ":")))
# Bus message sizes around the 7000-byte threshold (with / without `event`) and PostgreSQL's 8000-byte limit.
BUS_BYTES = (6999, 7000, 7001, 7999, 8000, 8001)
PAYLOAD_BYTES = (*(size - ENVELOPE for size in BUS_BYTES), 100_000)
# Slower than the live path by far, so an event the live path missed shows as lag, not only as a burst.
INTERVAL_MS = 800
DEADLINE_S = 20  # well above a run's 3.2 s: a stuck outbox ends the consumers, not the test's timeout
SETTLED_S = 5  # the consumers waited out the runs' end already: the outbox converges within this after them


async def test_events_around_the_notify_payload_limit_arrive_live_and_by_backfill_with_their_content(
        clean_db: str, scenario: Scenario) -> None:
    async with scenario.client() as client:
        # One after the other: the runs' events interleave rather than arrive as one burst of 7.
        run_ids = [await client.start_run(RunScript(steps=STEPS, interval_ms=INTERVAL_MS, payload_bytes=size))
                   for size in PAYLOAD_BYTES]
    live = await _consume_each(scenario, run_ids, ("from_seq", "last_event_id"), "live")
    backfill = await _consume_each(scenario, run_ids, ("from_seq",), "backfill")
    await scenario.assert_invariants(run_ids, wait_s=SETTLED_S)
    outcomes = [*live, *backfill]
    assert all(o.reached_terminal for o in outcomes), outcomes


async def _consume_each(scenario: Scenario, run_ids: list[str], resumes: tuple[ResumeMode, ...],
                        prefix: str) -> list[ConsumerOutcome]:
    """A consumer per run and resume mode (`<prefix>-<resume>-<payload bytes>-0`), all started at once."""
    groups = await asyncio.gather(*(
        scenario.consume(run_id, 1, prefix=f"{prefix}-{resume}-{size}-", deadline_s=DEADLINE_S, resume=resume)
        for run_id, size in zip(run_ids, PAYLOAD_BYTES) for resume in resumes))
    return [o for group in groups for o in group]
