"""The nemesis bound to a scenario's stack and history: `scenario.nemesis.paused("outbox-worker-0")`.

Each method returns the fault of `harness.nemesis` as a context manager: the fault starts on entry, its
window is recorded in the scenario's history, and it ends on exit, touching only its own target (ending
a kill restarts that process; other faults whose windows are open stay in force)."""
from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass

from harness.history import History
from harness.nemesis import (
    armed_failpoint,
    down,
    killed,
    link_toxic,
    locked_outbox,
    paused,
    removed_event,
    set_failpoint,
    terminated_backends,
)
from harness.nemesis.toxics import Direction, LinkToxic
from harness.stack import LocalStack, Toxic

__all__ = ["Nemesis"]


@dataclass(frozen=True)
class Nemesis:
    stack: LocalStack
    history: History
    needs: Callable[..., None] = lambda *capabilities: None  # the scenario's: stops it when the target lacks one

    def paused(self, process: str) -> AbstractContextManager[None]:
        """SIGSTOP for the block, SIGCONT on exit."""
        return paused(self.stack, self.history, process)

    def killed(self, process: str) -> AbstractContextManager[None]:
        """SIGKILL on entry (`postgres`: the postmaster); that process restarted on exit."""
        return killed(self.stack, self.history, process)

    def toxic(self, link: str, spec: LinkToxic, stream: Direction = "downstream",
              name: str = "") -> AbstractContextManager[Toxic]:
        """A typed toxic (`Latency(latency=200)`, `LimitData(bytes=300)`, ...) on a link for the block."""
        return link_toxic(self.stack, self.history, link, spec, stream, name)

    def down(self, link: str) -> AbstractContextManager[None]:
        """The link disabled for the block: new connections refused, open ones closed."""
        return down(self.stack, self.history, link)

    def failpoint(self, process: str, name: str, action: str) -> AbstractContextManager[None]:
        """A failpoint of the service armed for the block (`crash`, `1*crash`, `sleep(200)`, `error`, `hang`)."""
        self.needs("failpoints")
        return armed_failpoint(self.stack, self.history, process, name, action)

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
        return terminated_backends(self.stack, self.history, target)

    def remove_event(self, run_id: str, seq: int) -> None:
        """Delete one event row for good: a seq gap, the runbook's append bug."""
        removed_event(self.stack, self.history, run_id, seq)
