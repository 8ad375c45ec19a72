"""What every command shares: how errors are printed and which exit code they map to."""

from __future__ import annotations

from rich.console import Console
from rich.markup import escape  # a message naming `test_x[param]` keeps its brackets

from harness.errors import ConfigError, HarnessError, NoStackRunning, RunbookError, StackError, StackStateError

__all__ = ["EXIT_FAILED", "EXIT_NOTHING_TO_DO", "EXIT_USAGE", "exit_code", "print_error", "stderr", "stdout"]

EXIT_NOTHING_TO_DO = 1  # e.g. `harness down` with nothing running
EXIT_USAGE = 2  # bad usage, or the stack could not start (click also uses 2 for usage errors)
EXIT_FAILED = 1

stdout = Console()
stderr = Console(stderr=True)


def exit_code(exc: HarnessError) -> int:
    if isinstance(exc, NoStackRunning):
        return EXIT_NOTHING_TO_DO
    if isinstance(exc, (ConfigError, StackStateError, StackError, RunbookError)):
        return EXIT_USAGE
    return EXIT_FAILED


def print_error(exc: BaseException) -> None:
    """One line: the first line of the message (details such as log tails follow on later lines
    only for stack errors, where they are the useful part)."""
    message = str(exc).strip() or type(exc).__name__
    if not isinstance(exc, StackError):
        message = message.splitlines()[0]
    stderr.print(f"[bold red]harness: error:[/] {escape(message)}", highlight=False, markup=True, soft_wrap=True)
