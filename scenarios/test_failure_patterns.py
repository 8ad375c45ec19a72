"""Runbook: "Common Failure Patterns" 3 (Backfill Time Travel) and 4 (Client Duplicate on Reconnect),
on the real local stack. While the outbox is held back before each publish, clients that connect and
backfill must never see an event before it was published; when `limit_data` on the SSE link cuts the
stream mid-frame over and over, clients that resume (by `fromSeq` or `Last-Event-ID`) must get every
event exactly once. Judged by the checkers from what the consumers actually received."""
from __future__ import annotations

import asyncio

import pytest

from harness.model import Snapshot
from harness.history import ConnOpened, Frame, of_kind
from harness.nemesis import armed_failpoint, toxic
from harness.observer import take_snapshot
from harness.scenario import (
    BACKFILL,
    ScenarioRecord,
    assert_invariants,
    consumer_config,
    start_run,
)
from harness.stack import LocalStack
from harness.workload import (
    consume_all,
)

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.failure_patterns]



async def test_backfill_never_shows_unpublished_events_while_the_outbox_is_held_back(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord) -> None:
    # Every outbox cycle sleeps 400 ms before it publishes: appended events sit unpublished that long,
    # and each new consumer's backfill runs inside such a window.
    with armed_failpoint(stack, scenario.history, "outbox-worker-0", "outbox.before_publish", "sleep(400)"):
        run_id = await start_run(stack, scenario, steps=20, interval_ms=50)
        joiners = []
        for i in range(8):
            await asyncio.sleep(0.15)
            resume = "from_seq" if i % 2 else "last_event_id"
            joiners.append(asyncio.ensure_future(
                consume_all(consumer_config(stack, resume=resume), scenario.history, run_id, 1, prefix=f"j{i}-")))
        outcomes = [o for group in await asyncio.gather(*joiners) for o in group]
    assert all(o.reached_terminal for o in outcomes)
    assert len(of_kind(scenario.history, Frame)) >= 8 * 22
    # The publish log's record of each publish is the time bound; the default tolerance is 100 ms.
    assert_invariants(stack, scenario, [run_id], BACKFILL)  # the outbox is held while clients join
    # The hold hit the backfills: joiners connected while the database had an event past their cursor
    # that was appended and not yet published, which a backfill that ignores publishedAt would send.
    overlapping = _joined_over_unpublished(scenario, take_snapshot(clean_db, [run_id]), run_id)
    assert overlapping, "no joiner connected while an event past its cursor was unpublished"


def _joined_over_unpublished(scenario: ScenarioRecord, snapshot: Snapshot, run_id: str) -> list[tuple[str, int]]:
    """(connection, an unpublished seq past its cursor) for each connection opened while the run had one."""
    offset = snapshot.clock_offset_s or 0.0  # harness minus PostgreSQL clock; one host's clock when unmeasured
    events = snapshot.runs[run_id].events
    out = []
    for opened in of_kind(scenario.history, ConnOpened):
        at = opened.wall - offset  # on PostgreSQL's clock, like ts and publishedAt
        seq = next((e.seq for e in events if e.seq > opened.cursor and e.ts is not None and e.ts <= at
                    and (e.published_at is None or e.published_at > at)), None)
        if seq is not None:
            out.append((opened.conn, seq))
    return out


@pytest.mark.parametrize("resume", ["from_seq", "last_event_id"])
async def test_limit_data_cutting_frames_in_half_causes_no_duplicate_on_reconnect(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord, resume: str) -> None:
    # Frames are ~560 bytes (300-byte payload); 1777 bytes per connection land inside the third or
    # fourth frame (after the response head), so every connection ends with half a frame.
    run_id = await start_run(stack, scenario, steps=40, interval_ms=30, payload_bytes=300)
    config = consumer_config(stack, resume=resume, backoff_initial_s=0.05, backoff_max_s=0.2)
    consuming = asyncio.ensure_future(consume_all(config, scenario.history, run_id, 2))
    await asyncio.sleep(0.2)
    with toxic(stack, scenario.history, "sse", "limit_data", bytes=1777):
        await asyncio.sleep(1.5)
    outcomes = await consuming
    assert all(o.reached_terminal for o in outcomes)
    assert all(o.connections > 2 for o in outcomes), [o.connections for o in outcomes]
    assert_invariants(stack, scenario, [run_id])
