"""Schedules: faults as plain data, run on an explicit clock, always ending with the final heal.

An entry is `{"fault": KIND, "target": ..., "params": {...}, "start_s": 1.0, "end_s": 3.0}` in the
vocabulary of harness/nemesis/fault_kinds.py (the fault log's): the fault is entered `start_s` seconds
after the schedule starts and exited at `end_s` (null: held until the schedule ends); entries may
overlap. A `Schedule` is its entries plus what reproduces the rest of the run: the `seed` and a plain-data
`workload` description. It serialises to JSON (`to_json` / `from_json`); a bad entry is a ConfigError
naming the entry and the field.

`run_schedule` records the whole schedule in the history (an `info` op `nemesis/schedule`) and each
fault records its own window, so a run can be reproduced from its history. Its clock is injectable.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

from harness.errors import ConfigError
from harness.history import History
from harness.nemesis.fault_kinds import open_fault, validate_fault
from harness.stack import LocalStack

__all__ = ["Clock", "Entry", "LoopClock", "Schedule", "parse_schedule", "run_entries", "run_schedule"]

log = logging.getLogger(__name__)
_KEYS = ("fault", "target", "params", "start_s", "end_s")


@dataclass(frozen=True)
class Entry:
    fault: str
    target: str
    params: Mapping[str, Any] = field(default_factory=dict)
    start_s: float = 0.0
    end_s: float | None = None  # None: held until the schedule ends

    def to_dict(self) -> dict[str, Any]:
        return {"fault": self.fault, "target": self.target, "params": dict(self.params),
                "start_s": self.start_s, "end_s": self.end_s}

    @classmethod
    def from_dict(cls, raw: Any, index: int = 0) -> Entry:
        """A checked entry; ConfigError `schedule entry I, field F: ...` otherwise."""
        where = f"schedule entry {index}"
        if isinstance(raw, Entry):
            raw = raw.to_dict()
        if not isinstance(raw, Mapping):
            raise ConfigError(f"{where}: expected an object, got {type(raw).__name__}")
        for key in raw:
            if key not in _KEYS:
                raise ConfigError(f"{where}, field {key}: unknown field; fields: {', '.join(_KEYS)}")
        for key in ("fault", "target", "start_s"):
            if key not in raw:
                raise ConfigError(f"{where}, field {key}: missing")
        kind, target, params = raw["fault"], raw["target"], raw.get("params") or {}
        if not isinstance(kind, str):
            raise ConfigError(f"{where}, field fault: must be a string, got {kind!r}")
        if not isinstance(target, str) or not target:
            raise ConfigError(f"{where}, field target: must be a non-empty string, got {target!r}")
        if not isinstance(params, Mapping):
            raise ConfigError(f"{where}, field params: must be an object, got {params!r}")
        start = _seconds(where, "start_s", raw["start_s"])
        end = None if raw.get("end_s") is None else _seconds(where, "end_s", raw["end_s"])
        if end is not None and end < start:
            raise ConfigError(f"{where}, field end_s: {end} is before start_s {start}")
        try:
            validate_fault(kind, target, params)
        except ConfigError as exc:
            field_ = "fault" if str(exc).startswith("unknown fault") else "params"
            raise ConfigError(f"{where} ({kind} on {target}), field {field_}: {exc}") from exc
        return cls(kind, target, dict(params), start, end)


def _seconds(where: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"{where}, field {key}: must be a finite number >= 0, got {value!r}")
    return float(value)


@dataclass(frozen=True)
class Schedule:
    """Entries, and what else a run needs to be reproduced: its seed and its workload (plain data)."""

    entries: tuple[Entry, ...] = ()
    seed: int | None = None
    workload: Mapping[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"entries": [e.to_dict() for e in self.entries], "seed": self.seed,
                "workload": None if self.workload is None else dict(self.workload)}

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_dict(cls, raw: Any) -> Schedule:
        if not isinstance(raw, Mapping):
            raise ConfigError(f"schedule: expected an object with entries, seed, workload; got {type(raw).__name__}")
        unknown = sorted(set(raw) - {"entries", "seed", "workload"})
        if unknown:
            raise ConfigError(f"schedule, field {unknown[0]}: unknown field; fields: entries, seed, workload")
        seed, workload = raw.get("seed"), raw.get("workload")
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise ConfigError(f"schedule, field seed: must be an integer or null, got {seed!r}")
        if workload is not None and not isinstance(workload, Mapping):
            raise ConfigError(f"schedule, field workload: must be an object or null, got {workload!r}")
        entries = raw.get("entries", [])
        if not isinstance(entries, list):
            raise ConfigError(f"schedule, field entries: must be a list, got {type(entries).__name__}")
        return cls(tuple(parse_schedule(entries)), seed, workload)

    @classmethod
    def from_json(cls, text: str) -> Schedule:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ConfigError(f"schedule: not JSON: {exc}") from None
        return cls.from_dict(raw)


def parse_schedule(entries: Iterable[Any]) -> list[Entry]:
    """Checked entries from plain data (or entries); any problem is a ConfigError naming the entry."""
    return [Entry.from_dict(raw, i) for i, raw in enumerate(entries)]


class Clock(Protocol):
    """Where a schedule's seconds come from: the event loop's clock, or a test's fake one."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class LoopClock:
    def now(self) -> float:
        return asyncio.get_running_loop().time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def run_schedule(stack: LocalStack, history: History, schedule: Schedule | Iterable[Any],
                       clock: Clock | None = None) -> list[dict[str, Any]]:
    """Run the schedule's entries against the stack on `clock` (the loop's by default), recording the
    schedule in the history; the final heal ends with `stack.heal()`. See `run_entries`."""
    plan = schedule if isinstance(schedule, Schedule) else Schedule(tuple(parse_schedule(schedule)))
    history.op("nemesis", "info", "schedule", plan.to_dict())
    return await run_entries(plan.entries, lambda e: open_fault(stack, history, e.fault, e.target, e.params),
                             stack.heal, clock or LoopClock())


async def run_entries(entries: Iterable[Entry], open_: Callable[[Entry], AbstractContextManager[Any]],
                      heal: Callable[[], None], clock: Clock) -> list[dict[str, Any]]:
    """Enter and exit each entry's fault at its times from now; returns when the last timed one has
    exited (held ones, `end_s` null, are exited by the final heal then).

    Blocking fault calls run in a worker thread, so consumers on the same loop keep reading. The final
    heal (open faults exited, newest first, then `heal()`) always runs, also on an error, a cancellation
    or a KeyboardInterrupt. Returns one record per entry with the measured `entered_s` / `exited_s`.
    """
    plan = list(entries)
    t0 = clock.now()
    steps = sorted([(e.start_s, 1, i) for i, e in enumerate(plan)]
                   + [(e.end_s, 0, i) for i, e in enumerate(plan) if e.end_s is not None])
    opened: dict[int, AbstractContextManager[Any]] = {}
    timing: list[dict[str, Any]] = [{**e.to_dict(), "entered_s": None, "exited_s": None} for e in plan]
    try:
        for at, is_start, index in steps:
            await clock.sleep(max(0.0, t0 + at - clock.now()))
            if is_start:
                cm = opened[index] = open_(plan[index])  # cancelled while entering: entered, so exited
                try:
                    await _in_thread(cm.__enter__)
                except Exception:
                    del opened[index]  # failed to start: nothing to exit
                    raise
                timing[index]["entered_s"] = round(clock.now() - t0, 3)
            elif index in opened:
                await _in_thread(opened.pop(index).__exit__, None, None, None)
                timing[index]["exited_s"] = round(clock.now() - t0, 3)
    finally:
        _final_heal(opened, heal)  # synchronous: a second cancellation cannot interrupt it
    return timing


async def _in_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """`fn` in a worker thread; on cancellation the thread is still waited for, so a fault that was
    being entered is known to be entered (and is exited by the final heal)."""
    task = asyncio.ensure_future(asyncio.to_thread(fn, *args))
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        await asyncio.wait([task])
        raise


def _final_heal(opened: dict[int, AbstractContextManager[Any]], heal: Callable[[], None]) -> None:
    for index in sorted(opened, reverse=True):
        try:
            opened.pop(index).__exit__(None, None, None)
        except Exception as exc:  # the heal below still runs
            log.warning("exiting schedule entry %d failed: %s", index, exc)
    heal()
