"""DESIGN: several outbox workers share the work (`FOR UPDATE SKIP LOCKED`) and the bus fans out to
every API replica; the runbook's "Consider outbox worker scaling". On a stack of two API replicas and
two outbox workers, with runs in flight and consumers on both replicas, outbox-worker-1 and api-1 are
SIGKILLed together and restarted: the surviving worker carries on, the killed replica's consumers
reconnect (to api-1 again, once restarted: a consumer has one base URL), and every consumer gets
every event exactly once. Both workers must have published before the kill, or nothing was shared."""
from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from harness.history import Frame, of_kind
from harness.nemesis import killed
from harness.scenario import (
    ScenarioRecord,
    BACKFILL,
    assert_invariants,
    consumer_config,
    start_run,
)
from harness.stack import LocalStack, wait_until
from harness.workload import consume_all

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.replicas]

RUNS = 6
STEPS = 60
DOWN_S = 1.0  # both processes stay dead this long before the heal restarts them


def _publishers(logs_dir: Path, run_ids: set[str]) -> dict[str, int]:
    """Per outbox worker (by its own log file): how many events of these runs it published."""
    counts = {}
    for path in sorted(logs_dir.glob("outbox-worker-*.log")):
        n = 0
        for line in path.read_text(errors="replace").splitlines():
            if '"metric.events_published"' in line:
                n += json.loads(line[line.find("{"):]).get("runId") in run_ids
        counts[path.stem] = n
    return counts


async def test_killing_a_worker_and_a_replica_loses_and_duplicates_nothing(stack_factory,
                                                                          scenario: ScenarioRecord) -> None:
    stack: LocalStack = stack_factory(api_replicas=2, outbox_workers=2)
    replica_1 = stack.info.api_direct_urls[1]  # the sse proxy points at api-0 only
    run_ids = [await start_run(stack, scenario, steps=STEPS, interval_ms=40) for _ in range(RUNS)]
    consuming = asyncio.ensure_future(asyncio.gather(*(
        consume_all(consumer_config(stack, base_url=url, **cfg), scenario.history, run_id, 1,
                    prefix=f"{replica}{kind}-r{i}-")
        for i, run_id in enumerate(run_ids)
        for replica, url in (("a0", stack.info.api_url), ("a1", replica_1))
        for kind, cfg in (("q", {}), ("h", {"resume": "last_event_id"})))))
    logs = Path(stack.info.logs_dir)
    await asyncio.to_thread(wait_until, lambda: min(_publishers(logs, set(run_ids)).values()) > 0, 20,
                            "both outbox workers to publish")
    shared = _publishers(logs, set(run_ids))
    frames_before = len(of_kind(scenario.history, Frame))
    with killed(stack, scenario.history, "outbox-worker-1"), killed(stack, scenario.history, "api-1"):
        in_flight = frames_before < RUNS * (STEPS + 2) * 4
        await asyncio.sleep(DOWN_S)
    outcomes = [o for group in await consuming for o in group]
    assert set(shared) == {"outbox-worker-0", "outbox-worker-1"} and all(shared.values()), \
        f"the outbox workers did not share the work before the kill: {shared}"
    assert in_flight, "every event was delivered before the kill: nothing was tested"
    assert all(o.reached_terminal for o in outcomes), [o for o in outcomes if not o.reached_terminal]
    reconnected = [o for o in outcomes if o.consumer.startswith("a1") and o.connections > 1]
    assert reconnected, "no consumer of api-1 had to reconnect: the kill missed the streams"
    assert all(o.connections == 1 for o in outcomes if o.consumer.startswith("a0")), \
        "consumers of the surviving replica were disconnected"
    assert_invariants(stack, scenario, run_ids, BACKFILL)  # the kills span the runs' live phase
