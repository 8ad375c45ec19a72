"""The nemesis bound to a scenario's stack and history: `scenario.nemesis.paused("outbox-worker-0")`.

Each method returns the fault of `harness.nemesis` as a context manager: the fault starts on entry, its
window is recorded in the scenario's history, and it ends on exit, touching only its own target (ending
a kill restarts that process; other faults whose windows are open stay in force).

On a target that lacks a capability a fault needs, the scenario stops as not applicable naming it: a
failpoint needs `failpoints`, a role's own database link (`pg_api`, `pg_outbox`, `pg_queue`) needs
`separate_roles` (on a target doing every role in one process, its one link `pg` carries every role's
traffic, so a fault meant for one role's link would hit them all), and so does a pause or a kill of a
role's process (`outbox-worker-0`), which there is the `all` process, or a termination of a role's
database sessions: freezing, killing or cutting the API with the worker is not what a scenario faulting
a worker means. A scenario may still fault `all-0` by name.
A crash failpoint a scenario marks `or_kill=True` is instead replaced by the nearest real fault, a kill
of the process carrying the role while events are in flight (harness.nemesis.stand_in).

Timed windows can also be given as data: `await scenario.nemesis.run_schedule(entries)` runs a
harness.nemesis schedule (the format of `harness explore`'s `schedule.json`) on the loop's clock while
the scenario's consumers keep reading, with the same capability checks per entry."""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.history import History
from harness.model import ROLE_LINKS
from harness.nemesis import (
    down,
    killed,
    link_toxic,
    locked_outbox,
    paused,
    removed_event,
    run_schedule,
    set_failpoint,
    terminated_backends,
)
from harness.nemesis.fault_kinds import kill_stands_in, open_fault, validate_fault
from harness.nemesis.schedule import Entry, Schedule, parse_schedule
from harness.nemesis.toxics import Direction, LinkToxic
from harness.stack import LocalStack, Toxic

__all__ = ["Armed", "Nemesis"]


@dataclass(frozen=True)
class Armed:
    """What `failpoint(...)` put in place: the failpoint, or (`replaced`) a kill in flight standing in for it."""

    replaced: bool


@dataclass(frozen=True)
class Nemesis:
    stack: LocalStack
    history: History
    needs: Callable[..., None] = lambda *capabilities: None  # the scenario's: stops it when the target lacks one

    def paused(self, process: str) -> AbstractContextManager[None]:
        """SIGSTOP for the block, SIGCONT on exit."""
        self._needs_own_process(process)
        return paused(self.stack, self.history, process)

    def killed(self, process: str) -> AbstractContextManager[None]:
        """SIGKILL on entry (`postgres`: the postmaster); that process restarted on exit."""
        self._needs_own_process(process)
        return killed(self.stack, self.history, process)

    def _needs_own_process(self, process: str) -> None:
        if self.stack.real_name(process) != process:  # a role (or its process) that is the `all` one
            self.needs("separate_roles")

    def toxic(self, link: str, spec: LinkToxic, stream: Direction = "downstream",
              name: str = "") -> AbstractContextManager[Toxic]:
        """A typed toxic (`Latency(latency=200)`, `LimitData(bytes=300)`, ...) on a link for the block."""
        self._needs_link(link)
        return link_toxic(self.stack, self.history, link, spec, stream, name)

    def down(self, link: str) -> AbstractContextManager[None]:
        """The link disabled for the block: new connections refused, open ones closed."""
        self._needs_link(link)
        return down(self.stack, self.history, link)

    def _needs_link(self, link: str) -> None:
        if link in ROLE_LINKS:
            self.needs("separate_roles")

    def failpoint(self, process: str, name: str, action: str, *, or_kill: bool = False) -> AbstractContextManager[Armed]:
        """A failpoint of the service armed for the block (`crash`, `1*crash`, `sleep(200)`, `error`, `hang`).
        `or_kill`: a crash whose scenario a kill at any moment of the work keeps meaningful; on a target
        without failpoints, `process`'s carrier is SIGKILLed once while events are in flight instead."""
        params = {"name": name, "action": action, "or_kill": or_kill}
        try:
            validate_fault("failpoint", process, params)
        except ConfigError as exc:
            raise ConfigError(f"failpoint {name}={action}: {exc}") from None
        replaced = kill_stands_in(self.stack, params)
        if not replaced:
            self.needs("failpoints")
        return _armed(open_fault(self.stack, self.history, "failpoint", process, params), replaced=replaced)

    def failpoint_until_restart(self, process: str, name: str, action: str) -> AbstractContextManager[None]:
        """A failpoint armed for good (a `hang` nothing disarms): its window lasts for the block, which
        must end by restarting the process (`killed`), whose new incarnation starts without it."""
        self.needs("failpoints")
        set_failpoint(self.stack, process, name, action)
        return self.history.fault(f"failpoint:{name}", process, {"action": action})

    def locked_outbox(self, run_id: str | None = None) -> AbstractContextManager[list[str]]:
        """The run's outbox row (None: every row) held `FOR UPDATE` for the block."""
        return locked_outbox(self.stack, self.history, run_id)

    def terminated_backends(self, target: str) -> AbstractContextManager[list[int]]:
        """The target's database sessions terminated on entry; the window lasts for the block."""
        self._needs_own_process(target)
        return terminated_backends(self.stack, self.history, target)

    async def run_schedule(self, schedule: Schedule | Iterable[Any]) -> list[dict[str, Any]]:
        """Run the schedule's entries from now (returns when the last has exited; the final heal always
        runs); returns each entry with its measured `entered_s` / `exited_s`."""
        plan = schedule if isinstance(schedule, Schedule) else Schedule(tuple(parse_schedule(schedule)))
        for entry in plan.entries:
            self._needs_for(entry)
        return await run_schedule(self.stack, self.history, plan)

    def _needs_for(self, entry: Entry) -> None:
        """The capability checks of the method that opens the same fault."""
        if entry.fault in ("toxic", "cut"):
            self._needs_link(entry.target)
        elif entry.fault in ("kill", "pause", "terminate_sessions"):
            self._needs_own_process(entry.target)
        elif entry.fault == "failpoint" and not kill_stands_in(self.stack, entry.params):
            self.needs("failpoints")

    def remove_event(self, run_id: str, seq: int) -> None:
        """Delete one event row for good: a seq gap, the runbook's append bug."""
        removed_event(self.stack, self.history, run_id, seq)


@contextmanager
def _armed(fault: AbstractContextManager[None], *, replaced: bool) -> Iterator[Armed]:
    with fault:
        yield Armed(replaced)
