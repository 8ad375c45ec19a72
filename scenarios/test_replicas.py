"""DESIGN: several outbox workers share the work (`FOR UPDATE SKIP LOCKED`) and the bus fans out to
every API replica; the runbook's "Consider outbox worker scaling". On a stack of two API replicas and
two outbox workers, with runs in flight and consumers on both replicas, outbox-worker-1 and api-1 are
SIGKILLed together and restarted: the surviving worker carries on, the killed replica's consumers
reconnect (to api-1 again, once restarted: a consumer has one base URL), and every consumer gets
every event exactly once. Both workers must have published before the kill, or nothing was shared."""
from __future__ import annotations

from collections import Counter
from collections.abc import Callable

import pytest

from harness.scenario import BACKFILL
from harness.service_logs import PUBLISHED
from harness.stack import LocalStack
from harness.toolkit import Scenario

# A worker and a replica killed apart, and each worker's own share of the work: separate processes.
pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.replicas, pytest.mark.needs("separate_roles")]

RUNS = 6
STEPS = 60
DOWN_S = 1.0  # both processes stay dead this long before they are restarted
WORKERS = {"outbox-worker-0", "outbox-worker-1"}


def _publishers(scenario: Scenario, run_ids: set[str]) -> Counter[str]:
    """Per outbox worker (by its own log file): how many events of these runs it published."""
    return Counter(line.file.removesuffix(".log") for line in scenario.logs.lines(PUBLISHED, process="outbox-worker-*")
                   if line.run_id in run_ids)


async def test_killing_a_worker_and_a_replica_loses_and_duplicates_nothing(
        stack_factory: Callable[..., LocalStack], scenario: Scenario) -> None:
    stack = stack_factory(api_replicas=2, outbox_workers=2)
    s = scenario.on(stack)
    replica_1 = stack.info.api_direct_urls[1]  # the sse proxy points at api-0 only
    run_ids = [await s.start_run(steps=STEPS, interval_ms=40) for _ in range(RUNS)]
    consuming = [s.consume(run_id, 1, prefix=f"{replica}{kind}-r{i}-", base_url=url, resume=resume)
                 for i, run_id in enumerate(run_ids)
                 for replica, url in (("a0", stack.info.api_url), ("a1", replica_1))
                 for kind, resume in (("q", "from_seq"), ("h", "last_event_id"))]
    # The work shared before the kill: both workers have published events of these runs, and every client
    # streams from its replica (a client still connecting when api-1 dies would only ever see the new one).
    await s.until(lambda: set(_publishers(s, set(run_ids))) == WORKERS, 20, "both outbox workers to publish")
    await s.until(lambda: all(s.frames(run_id, prefix=f"{replica}{kind}-r{i}-") for i, run_id in enumerate(run_ids)
                              for replica in ("a0", "a1") for kind in ("q", "h")), 20, "every client to be streaming")
    frames_before = len(s.frames())
    with s.nemesis.killed("outbox-worker-1"), s.nemesis.killed("api-1"):
        await s.hold(DOWN_S)
    outcomes = [o for task in consuming for o in await task]
    assert frames_before < RUNS * (STEPS + 2) * 4, "every event was delivered before the kill: nothing was tested"
    assert all(o.reached_terminal for o in outcomes), [o for o in outcomes if not o.reached_terminal]
    reconnected = [o for o in outcomes if o.consumer.startswith("a1") and o.connections > 1]
    assert reconnected, "no consumer of api-1 had to reconnect: the kill missed the streams"
    assert all(o.connections == 1 for o in outcomes if o.consumer.startswith("a0")), \
        "consumers of the surviving replica were disconnected"
    await s.assert_invariants(run_ids, BACKFILL)  # the kills span the runs' live phase
