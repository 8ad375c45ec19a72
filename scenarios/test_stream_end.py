"""Stream basics (docs/CONTRACTS.md, runbook "Client Flapping": EventSource reconnect loops), on the real
local stack: a RunFinished that reaches open streams live, through the bus, ends each stream at once; the
server closes it, with nothing (no frame, no heartbeat) after the terminal event, and a reconnect after it
gets 204. The consumers read on after RunFinished, so a stream the server leaves open, or closes only
later for another reason (its idle safety net), fails `terminal`."""
from __future__ import annotations

import pytest

from harness.toolkit import Scenario

pytestmark = [pytest.mark.stack, pytest.mark.anyio]

# Paced so that RunFinished is appended seconds after the consumers connected: it reaches them live,
# not through their first backfill.
SCRIPT = {"steps": 5, "interval_ms": 400}


async def test_a_live_run_finished_closes_the_stream_at_once(clean_db: str, scenario: Scenario) -> None:
    run_id = await scenario.start_run(**SCRIPT)
    await scenario.consume(run_id, 3, probe_after_terminal=True)
    await scenario.assert_invariants([run_id], require_204_probe=True)
    opened = {c.consumer: c.opened.wall for c in reversed(scenario.conns(run_id))  # each one's first connection
              if c.opened is not None}
    finished = scenario.frames(run_id, type="RunFinished")
    assert len(finished) == 3 and all(f.event_ts is not None and f.event_ts > opened[f.consumer] + 1.0
                                      for f in finished), \
        f"RunFinished was not appended well after the consumers connected: {finished}, connected at {opened}"
