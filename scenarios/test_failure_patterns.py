"""Runbook: "Common Failure Patterns" 3 (Backfill Time Travel) and 4 (Client Duplicate on Reconnect),
on the real local stack. While the outbox is held back before each publish, clients that connect and
backfill must never see an event before it was published; when `limit_data` on the SSE link cuts the
stream mid-frame over and over, clients that resume (by `fromSeq` or `Last-Event-ID`) must get every
event exactly once. Judged by the checkers from what the consumers actually received."""
from __future__ import annotations

import asyncio

import pytest

from harness.model import Snapshot
from harness.nemesis import LimitData
from harness.scenario import BACKFILL
from harness.stack import LocalStack
from harness.toolkit import Scenario
from harness.toolkit.calibration import limit_inside_frame, measure_frame_ends, measuring_scenario

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.failure_patterns]

JOINERS = 8
PAYLOAD_BYTES = 300  # the cut run's step payload: a RunStep frame several times the response head
# Frames each consumer reads before the cuts: a few may be backfill (events appended before it connected).
STEADY_FRAMES = 5


async def test_backfill_never_shows_unpublished_events_while_the_outbox_is_held_back(
        clean_db: str, scenario: Scenario) -> None:
    # Every outbox cycle sleeps 400 ms before it publishes: appended events sit unpublished that long,
    # and each new consumer's backfill runs inside such a window.
    with scenario.nemesis.failpoint("outbox-worker-0", "outbox.before_publish", "sleep(400)"):
        run_id = await scenario.start_run(steps=20, interval_ms=50)
        joiners = []
        for i in range(JOINERS):
            # Joiners spread over the run, one every three appends (150 ms of its 50 ms steps), each while
            # an appended event waits unpublished (a loaded machine must not let them all miss the holds).
            await scenario.until(lambda: _appended_unpublished(scenario, run_id, 3 * i + 1), 20,
                                 f"append {3 * i + 1} with an event unpublished")
            resume = "from_seq" if i % 2 else "last_event_id"
            joiners.append(scenario.consume(run_id, 1, prefix=f"j{i}-", resume=resume))
        outcomes = [o for group in await asyncio.gather(*joiners) for o in group]
    assert all(o.reached_terminal for o in outcomes)
    assert len(scenario.frames(run_id)) >= JOINERS * 22
    # The publish log's record of each publish is the time bound; the default tolerance is 100 ms.
    await scenario.assert_invariants([run_id], BACKFILL)  # the outbox is held while clients join
    # The hold hit the backfills: joiners connected while the database had an event past their cursor
    # that was appended and not yet published, which a backfill that ignores publishedAt would send.
    overlapping = _joined_over_unpublished(scenario, scenario.snapshot([run_id]), run_id)
    assert overlapping, "no joiner connected while an event past its cursor was unpublished"


def _appended_unpublished(scenario: Scenario, run_id: str, appended: int) -> bool:
    """The run has `appended` events, and one of them is not published yet (or the run has ended)."""
    row = scenario.db.run(run_id)
    return row.last_seq >= appended and ((row.published_max or 0) < row.last_seq or row.state != "started")


def _joined_over_unpublished(scenario: Scenario, snapshot: Snapshot, run_id: str) -> list[tuple[str, int]]:
    """(connection, an unpublished seq past its cursor) for each connection opened while the run had one."""
    offset = snapshot.clock_offset_s or 0.0  # harness minus PostgreSQL clock; one host's clock when unmeasured
    events = snapshot.runs[run_id].events
    out = []
    for opened in (c.opened for c in scenario.conns(run_id) if c.opened is not None):
        at = opened.wall - offset  # on PostgreSQL's clock, like ts and publishedAt
        seq = next((e.seq for e in events if e.seq > opened.cursor and e.ts is not None and e.ts <= at
                    and (e.published_at is None or e.published_at > at)), None)
        if seq is not None:
            out.append((opened.conn, seq))
    return out


@pytest.fixture(scope="module")  # the scope of the anyio backend that runs it
async def cut_bytes(stack: LocalStack, tmp_path_factory: pytest.TempPathFactory) -> int:
    """The `limit_data` bytes that end every connection inside its third or fourth frame, as measured on
    this stack's wire for `PAYLOAD_BYTES` steps: a first connection and a resumed one alike."""
    measuring = measuring_scenario(stack, tmp_path_factory.mktemp("calibration"))
    return limit_inside_frame(await measure_frame_ends(measuring, PAYLOAD_BYTES), whole_frames=2)


@pytest.mark.parametrize("resume", ["from_seq", "last_event_id"])
async def test_limit_data_cutting_frames_in_half_causes_no_duplicate_on_reconnect(
        clean_db: str, scenario: Scenario, cut_bytes: int, resume: str) -> None:
    run_id = await scenario.start_run(steps=40, interval_ms=30, payload_bytes=PAYLOAD_BYTES)
    consumers = ("c0", "c1")
    consuming = scenario.consume(run_id, len(consumers), resume=resume, backoff_initial_s=0.05, backoff_max_s=0.2)
    # A steady phase first: live frames, on which delivered lag is judged (the cuts' window is excused).
    await scenario.until(lambda: all(len(scenario.seqs(run_id, consumer=c)) >= STEADY_FRAMES for c in consumers),
                         10, "a steady phase before the cuts")
    with scenario.nemesis.toxic("sse", LimitData(bytes=cut_bytes)):
        await scenario.hold(1.5)  # longer than the rest of the run: it is read cut after cut
    outcomes = await consuming
    assert all(o.reached_terminal for o in outcomes)
    assert all(o.connections > 2 for o in outcomes), [o.connections for o in outcomes]
    await scenario.assert_invariants([run_id])
