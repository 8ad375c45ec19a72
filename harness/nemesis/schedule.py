"""Schedules: faults as plain data, run on an explicit clock, always ending with the final heal.

An entry is `{"fault": KIND, "target": ..., "params": {...}, "start_s": 1.0, "end_s": 3.0}`: the fault
is entered `start_s` seconds after the schedule starts and exited at `end_s`; entries may overlap.
The whole schedule is recorded in the history (an `info` op `nemesis/schedule`) and each fault window
by the fault itself, so a run can be reproduced from its history.

Kinds (`FAULTS`), with their target and params:

| kind                        | target                          | params                                   |
|-----------------------------|---------------------------------|------------------------------------------|
| `latency`, `bandwidth`, ... | a link (`sse`, `pg_api`, ...)   | the toxic's fields, plus `stream`        |
| `down`                      | a link                          | -                                        |
| `kill`, `pause`             | a process (`api-0`, `postgres`) | -                                        |
| `failpoint`                 | a process                       | `name`, `action`                         |
| `terminate_backends`        | application_name or role, `*`   | -                                        |
| `lock_outbox`               | a run id, or `*` for every run  | -                                        |
"""
from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Callable, Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from harness.errors import ConfigError
from harness.history import History
from harness.nemesis.db_faults import locked_outbox, terminated_backends
from harness.nemesis.failpoints import armed_failpoint
from harness.nemesis.link_faults import down, link_toxic
from harness.nemesis.process_faults import killed, paused
from harness.nemesis.toxics import TOXIC_TYPES, check_direction, check_link, toxic_from_params
from harness.stack import LocalStack

__all__ = ["Entry", "FAULTS", "FaultKind", "parse_schedule", "run_schedule"]

log = logging.getLogger(__name__)
Opener = Callable[[LocalStack, History, "Entry"], AbstractContextManager[Any]]


@dataclass(frozen=True)
class FaultKind:
    """How to validate an entry of this kind, and how to open its context manager."""

    validate: Callable[[str, Mapping[str, Any]], None]
    open: Opener


@dataclass(frozen=True)
class Entry:
    fault: str
    target: str
    start_s: float
    end_s: float
    params: Mapping[str, Any] = field(default_factory=dict)
    index: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"fault": self.fault, "target": self.target, "params": dict(self.params),
                "start_s": self.start_s, "end_s": self.end_s}


def _no_params(target: str, params: Mapping[str, Any]) -> None:
    if params:
        raise ConfigError(f"takes no params, got {sorted(params)}")


def _toxic_kind(type_: str) -> FaultKind:
    def validate(target: str, params: Mapping[str, Any]) -> None:
        check_link(target)
        check_direction(params.get("stream", "downstream"))
        toxic_from_params(type_, {k: v for k, v in params.items() if k != "stream"})

    def open_(stack: LocalStack, history: History, e: Entry) -> AbstractContextManager[Any]:
        attrs = {k: v for k, v in e.params.items() if k != "stream"}
        stream = check_direction(e.params.get("stream", "downstream"))
        return link_toxic(stack, history, e.target, toxic_from_params(type_, attrs), stream,
                          name=f"sched{e.index}_{type_}_{stream}")
    return FaultKind(validate, open_)


def _link_only(target: str, params: Mapping[str, Any]) -> None:
    check_link(target)
    _no_params(target, params)


def _failpoint_validate(target: str, params: Mapping[str, Any]) -> None:
    if set(params) != {"name", "action"} or not all(isinstance(v, str) and v for v in params.values()):
        raise ConfigError("needs params {name: str, action: str} and nothing else")


FAULTS: dict[str, FaultKind] = {
    **{t: _toxic_kind(t) for t in TOXIC_TYPES},
    "down": FaultKind(_link_only, lambda s, h, e: down(s, h, e.target)),
    "kill": FaultKind(_no_params, lambda s, h, e: killed(s, h, e.target)),
    "pause": FaultKind(_no_params, lambda s, h, e: paused(s, h, e.target)),
    "failpoint": FaultKind(_failpoint_validate,
                           lambda s, h, e: armed_failpoint(s, h, e.target, e.params["name"], e.params["action"])),
    "terminate_backends": FaultKind(_no_params, lambda s, h, e: terminated_backends(s, h, e.target)),
    "lock_outbox": FaultKind(_no_params,
                             lambda s, h, e: locked_outbox(s, h, None if e.target == "*" else e.target)),
}
_KEYS = {"fault", "target", "params", "start_s", "end_s"}


def parse_schedule(entries: Iterable[Mapping[str, Any]]) -> list[Entry]:
    """Validate plain-data entries; any problem is a ConfigError naming the entry."""
    return [_parse_entry(i, raw) for i, raw in enumerate(entries)]


def _parse_entry(i: int, raw: Any) -> Entry:
    if isinstance(raw, Entry):
        raw = raw.to_dict()
    if not isinstance(raw, Mapping):
        raise ConfigError(f"schedule entry {i}: expected an object, got {type(raw).__name__}")
    extra, missing = sorted(set(raw) - _KEYS), sorted(_KEYS - {"params"} - set(raw))
    if extra or missing:
        raise ConfigError(f"schedule entry {i}: unknown keys {extra}, missing keys {missing}")
    kind, target, params = raw["fault"], raw["target"], raw.get("params") or {}
    if kind not in FAULTS:
        raise ConfigError(f"schedule entry {i}: unknown fault {kind!r}; known: {', '.join(sorted(FAULTS))}")
    if not isinstance(target, str) or not target:
        raise ConfigError(f"schedule entry {i}: target must be a non-empty string")
    if not isinstance(params, Mapping):
        raise ConfigError(f"schedule entry {i}: params must be an object")
    start, end = _seconds(i, "start_s", raw["start_s"]), _seconds(i, "end_s", raw["end_s"])
    if end <= start:
        raise ConfigError(f"schedule entry {i}: end_s ({end}) must be after start_s ({start})")
    try:
        FAULTS[kind].validate(target, params)
    except ConfigError as exc:
        raise ConfigError(f"schedule entry {i} ({kind} on {target}): {exc}") from exc
    return Entry(kind, target, start, end, dict(params), i)


def _seconds(i: int, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise ConfigError(f"schedule entry {i}: {key} must be a finite number >= 0, got {value!r}")
    return float(value)


async def run_schedule(stack: LocalStack, history: History,
                       entries: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Run the entries on a clock that starts now; returns when the last fault has exited.

    Blocking fault calls run in a worker thread, so consumers on the same loop keep reading. The final
    heal (open faults exited, then `stack.heal()`) always runs, also on an error or cancellation.
    Returns one record per entry with the measured `entered_s` / `exited_s` (relative to the start).
    """
    plan = parse_schedule(entries)
    history.op("nemesis", "info", "schedule", {"entries": [e.to_dict() for e in plan]})
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    steps = sorted([(e.start_s, 1, e.index) for e in plan] + [(e.end_s, 0, e.index) for e in plan])
    opened: dict[int, AbstractContextManager[Any]] = {}
    timing = [{**e.to_dict(), "entered_s": None, "exited_s": None} for e in plan]
    try:
        for at, is_start, index in steps:
            await asyncio.sleep(max(0.0, t0 + at - loop.time()))
            if is_start:
                cm = opened[index] = FAULTS[plan[index].fault].open(stack, history, plan[index])
                try:
                    await _in_thread(cm.__enter__)
                except Exception:
                    del opened[index]  # never entered: nothing to exit
                    raise
                timing[index]["entered_s"] = round(loop.time() - t0, 3)
            elif index in opened:
                await _in_thread(opened.pop(index).__exit__, None, None, None)
                timing[index]["exited_s"] = round(loop.time() - t0, 3)
    finally:
        _final_heal(stack, opened)  # synchronous: a second cancellation cannot interrupt it
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


def _final_heal(stack: LocalStack, opened: dict[int, AbstractContextManager[Any]]) -> None:
    for index in sorted(opened, reverse=True):
        try:
            opened.pop(index).__exit__(None, None, None)
        except Exception as exc:  # the heal below still runs
            log.warning("exiting schedule entry %d failed: %s", index, exc)
    stack.heal()
