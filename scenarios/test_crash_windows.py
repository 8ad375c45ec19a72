"""Runbook "Common Failure Patterns" 2 from the other side: the outbox worker dies after it has read a
batch and before the bus has it. Publish-then-mark makes that window safe: nothing was marked, so the
restarted worker publishes the batch and clients that stayed connected get it live. A worker that
marks first (and publishes after its commit) loses the batch for live clients for good: only a
reconnect's backfill would find it.

The crash is placed on the batch that carries the terminal event, so no later live event can trigger
the stream's gap fill and hide the loss; the stack's heartbeat (after which a stream re-reads the DB as
a safety net) is set well beyond the clients' patience, so only the bus can deliver in time.
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from harness.stack import LocalStack
from harness.toolkit import Scenario
from harness.workload import RunScript

pytestmark = [pytest.mark.anyio, pytest.mark.failure_patterns, pytest.mark.needs("append_endpoint")]

HEAD = 5  # events published before the crash
HEAD_PACE_S = 0.4  # 5 x 0.4 s: well past the stream's re-checks 0.2 s and 1 s after its backfill
HEARTBEAT_MS = 20_000  # the stream's DB safety net stays out of reach of the clients' deadline
OUTBOX = "outbox-worker-0"


async def test_a_crash_before_publishing_the_terminal_batch_loses_nothing_live(
        stack_factory: Callable[..., LocalStack], scenario: Scenario) -> None:
    stack = stack_factory(heartbeat_ms=HEARTBEAT_MS)
    s = scenario.on(stack)
    worker = stack.process(OUTBOX)
    async with s.client() as client:
        run_id = await client.start_run(RunScript(steps=0), job=False)
        # Two clients that never reconnect on their own: what they get, they get live.
        consuming = s.consume(run_id, 2, deadline_s=12, read_timeout_s=HEARTBEAT_MS / 1000 + 5, max_reconnects=0)
        # The head is paced well past the stream's post-backfill re-checks, so the clients are live.
        for step in range(HEAD):
            await s.hold(HEAD_PACE_S)  # the workload's pace, not a wait for anything
            await client.append_event(run_id, "RunStep", {"step": step})
        await s.until(lambda: all(len(set(s.seqs(run_id, consumer=c))) >= HEAD for c in ("c0", "c1")), 15,
                      "both clients to receive the head live")
        with s.nemesis.failpoint(OUTBOX, "outbox.before_publish", "1*crash"):
            with s.nemesis.paused(OUTBOX):  # the whole tail in one batch
                for step in range(HEAD, HEAD + 3):
                    await client.append_event(run_id, "RunStep", {"step": step})
                await client.append_event(run_id, "RunFinished", {"status": "succeeded"})
            await s.until(lambda: not worker.running, 15, "the outbox worker to crash")
        at_crash = sorted(set(s.seqs(run_id)))
        await asyncio.to_thread(s.runbook.restart_outbox)  # the runbook's "restart outbox worker"
        outcomes = await consuming
    # The crash hit in-flight work: the tail was appended and not yet delivered when the worker died.
    assert at_crash == list(range(1, HEAD + 1)), f"delivered before the restart: {at_crash}"
    assert all(o.connections == 1 for o in outcomes), "a client reconnected: its backfill could hide a loss"
    await s.assert_invariants([run_id])
