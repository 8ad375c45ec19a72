"""The owner's book of faults: each one opened through a harness.nemesis context manager on the owner's
LocalStack, kept open until it is ended (by `harness fault`, by its `--for` deadline, by `clear`, or by
the owner's teardown), and every start and end appended to the fault log.

Used from the owner's main thread only (harness/control/owner.py), so it needs no lock.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

from harness.control.fault_log import FaultLog, iso

__all__ = ["Active", "FaultBook"]


@dataclass
class Active:
    id: str
    fault: str
    target: str
    params: dict[str, Any]
    since: float  # epoch
    until: float | None  # epoch: when `--for` heals it
    cm: AbstractContextManager[Any] = field(repr=False)

    def describe(self, now: float) -> dict[str, Any]:
        return {"id": self.id, "fault": self.fault, "target": self.target, "params": self.params,
                "since": iso(self.since), "until": None if self.until is None else iso(self.until),
                "remaining_s": None if self.until is None else round(max(0.0, self.until - now), 1)}

    def label(self) -> str:
        return f"{self.fault} {self.target} ({self.id})"


class FaultBook:
    def __init__(self, log: FaultLog) -> None:
        self.log = log
        self.active: list[Active] = []
        self._next = 1

    def _new_id(self) -> str:
        fault_id, self._next = f"f{self._next}", self._next + 1
        return fault_id

    def start(self, fault: str, target: str, params: dict[str, Any], cm: AbstractContextManager[Any],
              for_s: float | None) -> tuple[Active, Any]:
        """Enter `cm` (the fault happens now) and keep it open; returns it and what `cm` yielded."""
        value = cm.__enter__()
        now = time.time()
        active = Active(self._new_id(), fault, target, params, now, None if for_s is None else now + for_s, cm)
        self.active.append(active)
        self.log.append(now, "start", active.id, fault, target, params, active.until)
        return active, value

    def end(self, active: Active) -> None:
        """Heal it: exit its context manager; logged as ended even when the heal fails (it raises then)."""
        self.active.remove(active)
        try:
            active.cm.__exit__(None, None, None)
        finally:
            self.log.append(time.time(), "end", active.id, active.fault, active.target, active.params, active.until)

    def instant(self, fault: str, target: str, params: dict[str, Any], action: Callable[[], Any]) -> Any:
        """A change with no duration (a restart, terminated sessions): a start and an end line around it."""
        fault_id = self._new_id()
        self.log.append(time.time(), "start", fault_id, fault, target, params, None)
        try:
            return action()
        finally:
            self.log.append(time.time(), "end", fault_id, fault, target, params, None)

    def find(self, fault: str, target: str, **params: Any) -> list[Active]:
        return [a for a in self.active if a.fault == fault and a.target == target
                and all(a.params.get(k) == v for k, v in params.items())]

    def expired(self, now: float) -> list[Active]:
        return [a for a in self.active if a.until is not None and a.until <= now]

    def end_all(self) -> list[str]:
        """End every active fault, newest first; returns a line per fault (a failed heal says why)."""
        done = []
        for active in reversed(list(self.active)):
            try:
                self.end(active)
                done.append(f"ended {active.label()}")
            except Exception as exc:  # the others must still be healed
                done.append(f"ended {active.label()}, but its heal failed: {exc}")
        return done
