"""Overlapping timed faults given as one schedule (harness/nemesis/schedule.py, the format `harness explore`
writes): a slow SSE link, a cut of it inside that window, and the run's outbox row locked across both.
Each fault starts and ends on the schedule's clock, touching only its target; the consumers, reading all
along, resume after the cut, and the run keeps every invariant."""
from __future__ import annotations

import pytest

from harness.history import FaultWindow, Op, of_kind
from harness.nemesis import Schedule, parse_schedule
from harness.toolkit import Scenario

pytestmark = [pytest.mark.stack, pytest.mark.anyio]

SLACK_S = 0.5  # how late a fault may start or end on a loaded machine (its worker thread, toxiproxy's API)


def _schedule(run_id: str) -> Schedule:
    return Schedule(tuple(parse_schedule([
        {"fault": "toxic", "target": "sse", "params": {"toxic": "latency", "latency": 100}, "start_s": 0.0,
         "end_s": 1.6},
        {"fault": "cut", "target": "sse", "start_s": 0.5, "end_s": 0.9},
        {"fault": "lock_outbox", "target": run_id, "start_s": 0.2, "end_s": 1.2},
    ])))


async def test_overlapping_faults_of_a_schedule_start_and_end_on_its_clock(clean_db: str, scenario: Scenario) -> None:
    # 6 s of steps: the schedule's 1.6 s of faults and their settling leave seconds of steady frames to judge
    # the delivered lag by (at 2.4 s, a loaded machine left "too few steady-state lag samples").
    run_id = await scenario.start_run(steps=150, interval_ms=40)
    consuming = [scenario.consume(run_id, 2, prefix="q", backoff_initial_s=0.05),
                 scenario.consume(run_id, 1, prefix="h", resume="last_event_id", backoff_initial_s=0.05)]
    await scenario.until(lambda: len(scenario.seqs(run_id)) >= 3, 10, "frames to flow before the schedule")
    schedule = _schedule(run_id)
    timing = await scenario.nemesis.run_schedule(schedule)
    for entry, got in zip(schedule.entries, timing):
        assert entry.end_s is not None and got["entered_s"] is not None and got["exited_s"] is not None, got
        assert entry.start_s <= got["entered_s"] < entry.start_s + SLACK_S, got
        assert entry.end_s <= got["exited_s"] < entry.end_s + SLACK_S, got
    for outcome in consuming:
        await outcome
    assert sorted(w.name for w in of_kind(scenario.history, FaultWindow)) == ["down", "lock_outbox", "toxic:latency"]
    [recorded] = [o.value for o in of_kind(scenario.history, Op) if o.f == "schedule"]
    assert Schedule.from_dict(recorded) == schedule  # the history holds the schedule, ready to run again
    assert scenario.resumptions(run_id), "the cut dropped no stream"
    await scenario.assert_invariants([run_id])
