"""Process faults with real signals: SIGKILL then restart, SIGSTOP then SIGCONT."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from harness.history import History
from harness.stack import LocalStack


@contextmanager
def killed(stack: LocalStack, history: History, name: str) -> Iterator[None]:
    """SIGKILL `name` (a service process, or `postgres` for a crash of the postmaster); on exit restart that
    process only: other faults whose windows are still open stay in force."""
    with history.fault("kill", name):
        if name == "postgres":
            assert stack.postgres is not None
            stack.postgres.kill()
        else:
            stack.process(name).kill()
        try:
            yield
        finally:
            stack.revive(name)


@contextmanager
def paused(stack: LocalStack, history: History, name: str) -> Iterator[None]:
    """SIGSTOP `name` for the block, SIGCONT on exit."""
    proc = stack.process(name)
    with history.fault("pause", name):
        proc.pause()
        try:
            yield
        finally:
            proc.resume()
