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

from harness.history import Frame, of_kind
from harness.nemesis import armed_failpoint, paused
from harness.scenario import ScenarioRecord, assert_invariants, consumer_config
from harness.stack import LocalStack, wait_until
from harness.workload import ClientConfig, RunsClient, RunScript, consume_all

pytestmark = [pytest.mark.anyio, pytest.mark.failure_patterns]

HEAD = 5  # events published before the crash
HEAD_PACE_S = 0.4  # 5 x 0.4 s: well past the stream's re-checks 0.2 s and 1 s after its backfill
HEARTBEAT_MS = 20_000  # the stream's DB safety net stays out of reach of the clients' deadline


def _received(scenario: ScenarioRecord, consumer: str) -> set[int]:
    return {f.seq for f in of_kind(scenario.history, Frame) if f.consumer == consumer and f.seq is not None}


async def test_a_crash_before_publishing_the_terminal_batch_loses_nothing_live(
        stack_factory: Callable[..., LocalStack], scenario: ScenarioRecord) -> None:
    stack = stack_factory(heartbeat_ms=HEARTBEAT_MS)
    worker = stack.process("outbox-worker-0")
    async with RunsClient(ClientConfig(stack.info.api_url), scenario.history) as client:
        run_id = await client.start_run(RunScript(steps=0), job=False)
        # Two clients that never reconnect on their own: what they get, they get live.
        config = consumer_config(stack, deadline_s=12, read_timeout_s=HEARTBEAT_MS / 1000 + 5, max_reconnects=0)
        consuming = asyncio.ensure_future(consume_all(config, scenario.history, run_id, 2))
        # The head is paced well past the stream's post-backfill re-checks, so the clients are live.
        for step in range(HEAD):
            await asyncio.sleep(HEAD_PACE_S)
            await client.append_event(run_id, "RunStep", {"step": step})
        await asyncio.to_thread(wait_until, lambda: all(len(_received(scenario, f"c{i}")) >= HEAD for i in (0, 1)),
                                15, "both clients to receive the head live")
        with armed_failpoint(stack, scenario.history, "outbox-worker-0", "outbox.before_publish", "1*crash"):
            with paused(stack, scenario.history, "outbox-worker-0"):  # the whole tail in one batch
                for step in range(HEAD, HEAD + 3):
                    await client.append_event(run_id, "RunStep", {"step": step})
                await client.append_event(run_id, "RunFinished", {"status": "succeeded"})
            await asyncio.to_thread(wait_until, lambda: not worker.running, 15, "the outbox worker to crash")
        stack.heal()  # the runbook's "restart outbox worker"
        outcomes = await consuming
    # The crash hit in-flight work: the tail was appended and not yet delivered when the worker died.
    assert all(o.connections == 1 for o in outcomes), "a client reconnected: its backfill could hide a loss"
    assert_invariants(stack, scenario, [run_id])
