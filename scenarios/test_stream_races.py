"""Races at the edges of the stream and the append path, made deterministic with failpoints.

- Subscribe before backfill: events (with the RunFinished) published while a stream sits between its
  backfill and its live loop (`stream.after_backfill=1*sleep`) must arrive from the bus as soon as
  that window ends, not only when the outbox's mark lets a DB re-check find them (the outbox is held
  between publish and mark by `outbox.after_publish=1*hang`, so only the live path can deliver).
- Gap fill: a live event that skips ahead of what the stream sent (the lower seq was published
  before the stream subscribed and marked only after its backfill and re-checks) must be preceded
  by the missing events read from the DB. The mark is released right after a heartbeat, so the next
  heartbeat re-check is a full interval away and cannot hide a missing fill.
- Gapless seq: an append rolled back before commit (`append.before_commit=1*error`) must release its
  seq; the next append gets it.
"""
from __future__ import annotations

import pytest

from harness.errors import WaitTimeout
from harness.scenario import BACKFILL
from harness.stack import Intervals
from harness.toolkit import Scenario
from harness.toolkit.calibration import heartbeat_phase_s
from harness.workload import RunsClient

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.stream_races, pytest.mark.needs("append_endpoint")]

WINDOW_MS = 2000  # stream.after_backfill sleep
# A heartbeat this long after the backfilled frame comes after the stream's post-backfill DB re-checks
# (0.2 s and 1.0 s after it), less the frame's own way to the client.
RECHECKS_DONE_S = 0.9


async def _new_run_with_started(scenario: Scenario, client: RunsClient) -> str:
    """A run without a job (only the test appends) whose RunStarted (seq 1) is published and marked."""
    run_id = await client.start_run(job=False)
    started = await client.append_event(run_id, "RunStarted", {})
    assert started.type == "ok" and started.value["seq"] == 1, started
    await scenario.wait_for_outbox([run_id], 10, finished=False)
    return run_id


def _published(scenario: Scenario, run_id: str) -> list[int]:
    """The seqs the outbox logged as published (the bus has them), in order."""
    return [line.obj["seq"] for line in scenario.logs.lines("metric.events_published", process="outbox-worker-0",
                                                            run_id=run_id)]


async def test_events_published_between_backfill_and_follow_arrive_live(clean_db: str, scenario: Scenario) -> None:
    async with scenario.client() as client:
        run_id = await _new_run_with_started(scenario, client)
        with scenario.nemesis.failpoint("outbox-worker-0", "outbox.after_publish", "1*hang"), \
                scenario.nemesis.failpoint("api-0", "stream.after_backfill", f"1*sleep({WINDOW_MS})"):
            consuming = scenario.consume(run_id, 1, deadline_s=20)
            first = await scenario.until(lambda: scenario.frames(run_id), 5, "the backfilled RunStarted")
            window_end = first[0].mono + WINDOW_MS / 1000
            # Both events in one outbox cycle: the outbox is stopped while they are appended.
            with scenario.nemesis.paused("outbox-worker-0"):
                step = await client.append_event(run_id, "RunStep", {"step": 0})
                done = await client.append_event(run_id, "RunFinished", {"status": "succeeded"})
            assert (step.type, done.type) == ("ok", "ok") and (step.value["seq"], done.value["seq"]) == (2, 3)
            published = await scenario.until(lambda: [seq for seq in _published(scenario, run_id) if seq >= 2], 2,
                                             "the outbox to publish seqs 2 and 3")
            assert set(published) == {2, 3}, published
            assert scenario.history.mono() < window_end - 0.3, \
                "setup too slow: the events were not published inside the window"
            # The outbox now holds the mark: only the live bus can bring seqs 2 and 3 to the stream.
            # The correct service queued them on the stream's subscription: they go out when the window ends.
            try:
                await scenario.until(lambda: len(scenario.seqs(run_id)) >= 3,
                                     window_end + 1.0 - scenario.history.mono(), "seqs 2 and 3 live")
            except WaitTimeout:
                raise AssertionError(
                    f"events published during the stream's backfill->follow window were not delivered live "
                    f"within 1 s after it (received seqs {scenario.seqs(run_id)} while the outbox had published "
                    f"2 and 3): the stream was not subscribed before its backfill") from None
        outcomes = await consuming
    assert all(o.reached_terminal for o in outcomes)
    frames = scenario.frames(run_id)
    assert [f.seq for f in frames] == [1, 2, 3]
    late = [f for f in frames[1:] if f.mono > window_end + 0.5]
    assert not late, f"live events arrived more than 0.5 s after the window: {late}"
    await scenario.assert_invariants([run_id], BACKFILL)  # delivery is held by failpoints on purpose


async def test_a_live_event_that_skips_ahead_is_preceded_by_the_missing_events(
        clean_db: str, scenario: Scenario, service_intervals: Intervals) -> None:
    phase_s = heartbeat_phase_s(service_intervals.heartbeat_ms / 1000)
    async with scenario.client() as client:
        run_id = await _new_run_with_started(scenario, client)
        with scenario.nemesis.failpoint("outbox-worker-0", "outbox.after_publish", "1*hang"):
            assert (await client.append_event(run_id, "RunStep", {"step": 0})).value["seq"] == 2
            # seq 2 is on the bus but not marked: a stream opened now backfills only seq 1.
            await scenario.until(lambda: 2 in _published(scenario, run_id), 3, "the outbox to publish seq 2")
            consuming = scenario.consume(run_id, 1, deadline_s=20)
            first = await scenario.until(lambda: scenario.frames(run_id), 3, "the backfilled RunStarted")
            assert [f.seq for f in first] == [1]
            # Past the post-backfill re-checks, right after a heartbeat: the next heartbeat (and its DB
            # re-check) is a full interval away. Polled finely: a late look would leave less than the interval.
            beats = await scenario.until(lambda: [h for c in scenario.conns(run_id) for h in c.heartbeats
                                                  if h.mono > first[0].mono + RECHECKS_DONE_S],
                                         3, "a heartbeat after the re-checks", poll_s=0.005)
            assert scenario.history.mono() - beats[0].mono < phase_s, "missed the heartbeat's phase"
            assert (await client.append_event(run_id, "RunStep", {"step": 1})).value["seq"] == 3
        # The hang is released: the outbox marks seq 2 and publishes seq 3, which reaches the stream
        # live with seq 2 never sent on it.
        assert (await client.append_event(run_id, "RunFinished", {"status": "succeeded"})).value["seq"] == 4
        outcomes = await consuming
    assert all(o.reached_terminal for o in outcomes)
    assert scenario.seqs(run_id) == [1, 2, 3, 4]
    await scenario.assert_invariants([run_id], BACKFILL)  # delivery is held by failpoints on purpose


async def test_a_rolled_back_append_releases_its_seq(clean_db: str, scenario: Scenario) -> None:
    async with scenario.client() as client:
        run_id = await client.start_run(job=False)
        with scenario.nemesis.failpoint("api-0", "append.before_commit", "1*error"):
            failed = await client.append_event(run_id, "RunStarted", {})
        # A 500 is indeterminate to the client ("info"); the error says it never committed.
        assert failed.value["status"] == 500 and "append.before_commit" in str(failed.error), failed
        seqs = []
        for kind, payload in (("RunStarted", {}), ("RunStep", {"step": 0}), ("RunFinished", {"status": "succeeded"})):
            op = await client.append_event(run_id, kind, payload)
            assert op.type == "ok", op
            seqs.append(op.value["seq"])
    assert seqs == [1, 2, 3], f"the rolled-back append kept its seq: the next appends got {seqs}"
    await scenario.consume(run_id, 1, deadline_s=20)
    await scenario.assert_invariants([run_id], BACKFILL)  # the client joins after the run has ended
