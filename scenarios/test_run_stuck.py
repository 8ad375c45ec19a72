"""Runbook: "Run Stuck" Diagnostic Checklist, on the real local stack. A held outbox worker delivers
nothing past what was published and nothing unpublished, then catches up exactly once; a held queue
worker leaves the run queued until it resumes; a seq gap stops the outbox's cursor at the gap (it
never skips), nothing past it reaches a client, and the `outbox.gap` alert is logged. In each case the
runbook's checklist, run as code (`scenario.runbook.diagnose`), names what the operator would see.
Judged by the checkers from what the consumers actually received."""
from __future__ import annotations

import asyncio

import pytest

from harness.scenario import BACKFILL, explain
from harness.toolkit import Scenario

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.run_stuck]

HOLD_S = 1.5  # how long a worker is held; long against the 200 ms outbox poll and 1 s heartbeat
IN_FLIGHT_S = 0.5  # a frame the bus carried before a pause reaches the clients within this (loopback)


async def test_held_outbox_delivers_nothing_new_then_catches_up_exactly_once(clean_db: str,
                                                                           scenario: Scenario) -> None:
    run_id = await scenario.start_run(steps=40, interval_ms=25)
    live = [scenario.consume(run_id, 2, prefix="q"), scenario.consume(run_id, 1, prefix="h", resume="last_event_id")]
    await scenario.until(lambda: len(scenario.seqs(run_id)) >= 9, 20, "first frames to arrive")
    with scenario.nemesis.paused("outbox-worker-0"):
        paused_at = scenario.history.mono()
        await scenario.caught_up(run_id, ("q0", "q1", "h0"))  # what was on the wire has landed
        # A late joiner's backfill during the hold: only what was published (time_travel judges it too).
        late = scenario.consume(run_id, 1, prefix="late")
        await scenario.hold(HOLD_S)
        held = scenario.db.run(run_id)  # its published seqs do not move while the outbox is held
        # The outbox publishes, then marks: a cycle the pause caught in between had its events on the bus
        # already, so they may land just after the pause, still unmarked. Anything later is new.
        past = [f.seq for f in scenario.frames(run_id)
                if f.seq is not None and f.seq > (held.published_max or 0) and f.mono > paused_at + IN_FLIGHT_S]
        diagnosis = scenario.runbook.diagnose(run_id)
    await asyncio.gather(*live, late)
    await scenario.assert_invariants([run_id], BACKFILL)  # held, then caught up: no steady live phase
    assert past == [], f"{len(past)} frames past what was published reached clients while the outbox was held: {past}"
    assert held.last_seq > (held.published_max or 0), "the hold never held back an appended event: nothing was tested"
    assert diagnosis.verdict == "outbox_stuck" and diagnosis.evidence["nextSeq"] == (held.published_max or 0) + 1, \
        diagnosis


async def test_held_queue_worker_leaves_the_run_queued_until_it_resumes(clean_db: str, scenario: Scenario) -> None:
    async with scenario.client() as client:
        with scenario.nemesis.paused("queue-worker-0"):
            run_id = await scenario.start_run(steps=10, interval_ms=10)
            consuming = scenario.consume(run_id, 2)
            await scenario.hold(HOLD_S)
            held = await client.get_run(run_id)
            diagnosis = scenario.runbook.diagnose(run_id)
            assert scenario.seqs(run_id) == [], "frames arrived for a run no worker has started"
        assert held.type == "ok" and held.value["state"] == "queued" and held.value["lastSeq"] == 0, held.value
        assert (diagnosis.verdict, diagnosis.evidence.get("case")) == ("never_started", "queued"), diagnosis
        outcomes = await consuming
        assert all(o.reached_terminal for o in outcomes)
        done = await client.get_run(run_id)
    assert done.value["state"] == "succeeded" and done.value["lastSeq"] == 12, done.value
    await scenario.assert_invariants([run_id])


async def test_a_seq_gap_stops_the_outbox_at_the_gap_and_alerts(clean_db: str, scenario: Scenario) -> None:
    gap = 5
    with scenario.nemesis.paused("outbox-worker-0"):
        run_id = await scenario.start_run(steps=8, interval_ms=0)
        await scenario.until(lambda: scenario.db.run(run_id).state == "succeeded", 20, "the run to finish")
        scenario.nemesis.remove_event(run_id, gap)
        consuming = [scenario.consume(run_id, 1, prefix="q", deadline_s=4),
                     scenario.consume(run_id, 1, prefix="h", deadline_s=4, resume="last_event_id")]
        await scenario.until(lambda: sum(c.opened is not None for c in scenario.conns(run_id)) >= 2, 10,
                             "both clients to be connected before the outbox resumes")
    await asyncio.gather(*consuming)  # the consumers wait out their deadline: nothing past the gap may ever come
    got = sorted(set(scenario.seqs(run_id)))
    assert not [seq for seq in got if seq >= gap], f"a client received past the gap: {got}"
    row = scenario.db.run(run_id)
    assert row.last_seq == 10 and (row.next_seq or 0) <= gap, f"the outbox cursor moved past the gap: {row}"
    assert row.next_seq == gap, f"the outbox stopped short of the gap: {row}"
    assert got == list(range(1, gap)), f"clients did not get everything before the gap: {got}"
    alerts = await scenario.until(lambda: scenario.logs.lines("outbox.gap", process="outbox-worker-*", run_id=run_id),
                                  15, "the outbox.gap alert")
    # int(): a logfmt target's fields are text
    assert alerts[0].obj["level"] == "alert" and int(alerts[0].obj["expectedSeq"]) == gap, alerts[0].obj
    diagnosis = scenario.runbook.diagnose(run_id)
    assert diagnosis.verdict == "seq_gap" and diagnosis.evidence["expectedSeq"] == gap, diagnosis
    assert diagnosis.evidence["lastSuccessfulSeq"] == gap - 1, diagnosis.evidence
    result = scenario.judge(scenario.snapshot([run_id]),
                            ("exactly_once", "ordering", "no_duplicate_delivery", "time_travel", "gapless",
                             "outbox_converged"), {"require_terminal": {"q": False, "h": False}},
                            expect={"gapless": False, "outbox_converged": False})  # the incident, provoked
    verdicts = {name: entry["valid"] for name, entry in result.evidence.items()}
    # Clients got the prefix exactly once; the harness sees the incident the runbook describes: a gapped
    # log and an outbox that cannot converge.
    assert verdicts == {"exactly_once": True, "ordering": True, "no_duplicate_delivery": True, "time_travel": True,
                        "gapless": False, "outbox_converged": False}, explain(result)
