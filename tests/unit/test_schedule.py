"""Fault schedules as data (JSON round trip, errors naming the entry and field) and their runner on a
fake clock: faults entered and exited at their times, and the final heal on every way out."""
from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.explore import ScheduleLog
from harness.history import History
from harness.nemesis import FAULTS, Entry, Schedule, open_fault, parse_schedule
from harness.nemesis.schedule import run_entries

GOOD: list[dict[str, Any]] = [
    {"fault": "toxic", "target": "pg_api", "params": {"toxic": "latency", "latency": 100, "stream": "upstream"},
     "start_s": 0, "end_s": 1},
    {"fault": "cut", "target": "sse", "start_s": 0.5, "end_s": 2},
    {"fault": "kill", "target": "outbox-worker-0", "params": {}, "start_s": 1, "end_s": 1.5},
    {"fault": "pause", "target": "api-0", "start_s": 1, "end_s": None},
    {"fault": "failpoint", "target": "outbox-worker-0",
     "params": {"name": "outbox.after_publish", "action": "1*crash", "or_kill": True}, "start_s": 0, "end_s": 3},
    {"fault": "terminate_sessions", "target": "api", "params": {"role": "api"}, "start_s": 2, "end_s": 2.1},
    {"fault": "lock_outbox", "target": "*", "start_s": 0, "end_s": 1},
    {"fault": "buffering", "target": "nginx", "params": {"on": True}, "start_s": 0, "end_s": 1},
]


def test_a_schedule_round_trips_through_json() -> None:
    schedule = Schedule(tuple(parse_schedule(GOOD)), seed=42, workload={"runs": [{"steps": 5, "interval_ms": 10}]})
    again = Schedule.from_json(schedule.to_json())
    assert again == schedule
    assert [e.fault for e in again.entries] == [g["fault"] for g in GOOD]
    assert again.entries[3].end_s is None and again.entries[0].params["stream"] == "upstream"


def test_the_vocabulary_is_the_fault_logs() -> None:
    # harness/control/fault_log.py's kinds, less `restart` (an instant: nothing to schedule)
    assert set(FAULTS) == {"toxic", "cut", "kill", "pause", "failpoint", "terminate_sessions", "lock_outbox",
                           "buffering"}


def _entry(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"fault": "toxic", "target": "pg_api", "params": {"toxic": "latency", "latency": 10},
                            "start_s": 0, "end_s": 1}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


@pytest.mark.parametrize(("entry", "says"), [
    (_entry(fault="flood"), "field fault: unknown fault 'flood'"),
    (_entry(target="pg_nope"), "field params: unknown link"),
    (_entry(target=""), "field target"),
    (_entry(params={"toxic": "latency", "stream": "sideways"}), "direction"),
    (_entry(params={"toxic": "latency", "latncy": 10}), "unknown attribute"),
    (_entry(params={"latency": 10}), "params.toxic"),
    (_entry(params={"toxic": "latency", "latency": -5}), "non-negative"),
    (_entry(start_s=2, end_s=1), "field end_s: 1.0 is before start_s 2.0"),
    (_entry(start_s=-1), "field start_s"),
    (_entry(end_s="soon"), "field end_s"),
    (_entry(start_s=...), "field start_s: missing"),
    (_entry(when=3), "field when: unknown field"),
    (_entry(fault="cut", target="sse", params={"x": 1}), "unknown ['x']"),
    (_entry(fault="failpoint", target="api-0", params={"name": "x"}), "missing ['action']"),
    (_entry(fault="failpoint", target="api-0", params={"name": "x", "action": "hang", "or_kill": True}),
     "only a crash"),
    (_entry(fault="buffering", target="nginx", params={"on": "yes"}), "params.on"),
    (_entry(params=[1]), "field params: must be an object"),
    ("latency", "expected an object"),
])
def test_bad_entries_are_config_errors_naming_the_entry_and_field(entry: Any, says: str) -> None:
    with pytest.raises(ConfigError, match="schedule entry 1") as err:
        Schedule.from_dict({"entries": [GOOD[0], entry]})
    assert says in str(err.value)


@pytest.mark.parametrize(("text", "says"), [
    ("{", "not JSON"),
    ("[]", "expected an object"),
    ('{"entries": {}}', "field entries"),
    ('{"seed": "x"}', "field seed"),
    ('{"workload": 3}', "field workload"),
    ('{"faults": []}', "field faults: unknown field"),
])
def test_bad_schedules_are_config_errors_naming_the_field(text: str, says: str) -> None:
    with pytest.raises(ConfigError, match=says):
        Schedule.from_json(text)


class FakeClock:
    """Time moves only when the runner sleeps; `interrupt_at` raises KeyboardInterrupt there."""

    def __init__(self, interrupt_at: float | None = None) -> None:
        self.t, self.interrupt_at = 100.0, interrupt_at

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        if self.interrupt_at is not None and self.t + seconds >= 100.0 + self.interrupt_at:
            raise KeyboardInterrupt
        self.t += seconds
        await asyncio.sleep(0)


class Faults:
    """Fake faults that log `enter`/`exit` with the fake time; `failing` ones raise on entry."""

    def __init__(self, clock: FakeClock, failing: str = "") -> None:
        self.clock, self.failing = clock, failing
        self.log: list[tuple[float, str, str]] = []
        self.healed = 0

    @contextmanager
    def open(self, entry: Entry) -> Iterator[None]:
        if entry.target == self.failing:
            raise RuntimeError(f"{entry.target} would not start")
        self.log.append((self.clock.t - 100, "enter", entry.target))
        try:
            yield
        finally:
            self.log.append((self.clock.t - 100, "exit", entry.target))

    def heal(self) -> None:
        self.healed += 1


ENTRIES = [Entry("pause", "a", {}, 1.0, 4.0), Entry("pause", "b", {}, 2.0, 3.0), Entry("pause", "c", {}, 2.5, None)]


def _run(clock: FakeClock, faults: Faults, entries: list[Entry] = ENTRIES) -> list[dict[str, Any]]:
    return asyncio.run(run_entries(entries, faults.open, faults.heal, clock))


def test_entries_enter_and_exit_on_the_clock_and_held_ones_end_in_the_final_heal() -> None:
    clock = FakeClock()
    faults = Faults(clock)
    timing = _run(clock, faults)
    assert faults.log == [(1.0, "enter", "a"), (2.0, "enter", "b"), (2.5, "enter", "c"), (3.0, "exit", "b"),
                          (4.0, "exit", "a"), (4.0, "exit", "c")]
    assert [(t["entered_s"], t["exited_s"]) for t in timing] == [(1.0, 4.0), (2.0, 3.0), (2.5, None)]
    assert faults.healed == 1


def test_a_keyboard_interrupt_still_heals_what_is_open() -> None:
    clock = FakeClock(interrupt_at=2.7)
    faults = Faults(clock)
    with pytest.raises(KeyboardInterrupt):
        _run(clock, faults)
    assert sorted(what for _, what, _ in faults.log if what == "exit") == ["exit"] * 3
    assert {t for _, what, t in faults.log if what == "exit"} == {"a", "b", "c"}
    assert faults.healed == 1


def test_a_fault_that_fails_to_start_heals_the_others_and_is_not_exited() -> None:
    clock = FakeClock()
    faults = Faults(clock, failing="b")
    with pytest.raises(RuntimeError, match="b would not start"):
        _run(clock, faults)
    assert faults.log == [(1.0, "enter", "a"), (2.0, "exit", "a")]
    assert faults.healed == 1


def test_an_explore_examples_schedule_is_written_as_json_that_reads_back(tmp_path: Path) -> None:
    log = ScheduleLog()
    log.seed = 7
    log.begin().append("heal()")
    log.faults.append(Entry("toxic", "sse", {"toxic": "limit_data", "bytes": 600}, 0.25, 0.55))
    start = {"op": "start_run", "at_s": 0.01, "run": "run0", "steps": 3, "interval_ms": 50}
    consume = {"op": "consume", "at_s": 0.2, "consumer": "c0", "run": "run0", "resume": "from_seq", "from_seq": 0}
    log.operations += [start, consume]
    log.write(tmp_path)
    again = Schedule.from_json((tmp_path / "schedule.json").read_text())
    assert again == log.schedule()
    assert again.seed == 7 and again.workload == {"generator": "harness explore", "operations": [start, consume],
                                                  "steps": ["heal()"]}


@pytest.mark.parametrize(("capabilities", "or_kill", "opens"), [
    ({"failpoints"}, True, "armed_failpoint"),
    (set(), True, "killed_in_flight"),  # the stand-in, only where the target has no failpoints
    (set(), False, "armed_failpoint"),  # no stand-in asked for: arming fails on the target, not silently replaced
])
def test_a_crash_failpoint_or_kill_opens_the_stand_in_only_without_failpoints(
        capabilities: set[str], or_kill: bool, opens: str) -> None:
    stack: Any = SimpleNamespace(profile=SimpleNamespace(lacks=lambda *c: [x for x in c if x not in capabilities]))
    params = {"name": "outbox.after_publish", "action": "1*crash", "or_kill": or_kill}
    cm: Any = open_fault(stack, History(), "failpoint", "outbox-worker-0", params)  # not entered: nothing runs
    assert cm.gen.__name__ == opens
    cm.gen.close()
