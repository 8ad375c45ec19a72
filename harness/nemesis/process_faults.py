"""Process faults with real signals: SIGKILL then restart, SIGSTOP then SIGCONT.

A role's process name on a target doing every role in one process (`outbox-worker-0` on an `all`
target) hits the `all` process carrying it; the window names the process really hit and, in `for`,
the name the fault was asked for."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.history import History
from harness.stack import LocalStack


def hit(stack: LocalStack, name: str) -> tuple[str, dict[str, Any]]:
    """The process a fault on `name` really hits, and the window's params saying what it stood for."""
    real = stack.real_name(name)
    return real, ({} if real == name else {"for": name})


@contextmanager
def killed(stack: LocalStack, history: History, name: str) -> Iterator[None]:
    """SIGKILL `name` (a service process, or `postgres` for a crash of the postmaster); on exit restart that
    process only: other faults whose windows are still open stay in force."""
    real, params = hit(stack, name)
    with history.fault("kill", real, params):
        if real == "postgres":
            assert stack.postgres is not None
            stack.postgres.kill()
        else:
            stack.process(real).kill()
        try:
            yield
        finally:
            stack.revive(real)


@contextmanager
def paused(stack: LocalStack, history: History, name: str) -> Iterator[None]:
    """SIGSTOP `name` for the block, SIGCONT on exit."""
    real, params = hit(stack, name)
    proc = stack.process(real)
    with history.fault("pause", real, params):
        proc.pause()
        try:
            yield
        finally:
            proc.resume()
