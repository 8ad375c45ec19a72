"""What every command shares: how errors are printed and which exit code they map to."""

from __future__ import annotations

from typing import Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.text import Text  # a message naming `test_x[param]` keeps its brackets

from harness.errors import ConfigError, HarnessError, NoStackRunning, RunbookError, StackError, StackStateError

__all__ = ["EXIT_FAILED", "EXIT_INTERRUPTED", "EXIT_NOTHING_TO_DO", "EXIT_USAGE", "exit_code", "print_error",
           "print_usage_error", "say", "say_event", "say_started", "stderr", "stdout"]

EXIT_NOTHING_TO_DO = 1  # e.g. `harness down` with nothing running
EXIT_USAGE = 2  # bad usage, or the stack could not start (click also uses 2 for usage errors)
EXIT_FAILED = 1
EXIT_INTERRUPTED = 130  # Ctrl-C, as a shell reports it

stdout = Console()  # colour on a terminal only: rich leaves a pipe or a CI log plain
stderr = Console(stderr=True)


def say_event(event: dict[str, Any]) -> None:
    """A progress event of a suite run (harness/suite_runner.py) as its line, when it has one."""
    from harness.progress import live_line  # the report's modules: only for the commands that run suites

    line = live_line(event)
    if line is not None:
        say(line)


def say_started(component: str, seconds: float) -> None:
    """A stack component up (LocalStack's `on_started`), as `harness run` tells it."""
    say_event({"event": "component", "name": component, "seconds": seconds})


def say(line: Text) -> None:
    """One line of progress as it is: never wrapped or cut by rich (a path or a command stays one line to
    copy, also in an 80-column CI log), no highlighting guessed into it."""
    stdout.print(line, soft_wrap=True, highlight=False)


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


def print_usage_error(exc: typer.TyperException) -> None:
    """A usage error of the command line (typer's click exception) in the same one-line style, with where to
    look; nothing when a group was given without its command (its help printed already)."""
    if type(exc).__name__ == "NoArgsIsHelpError":
        return
    ctx = getattr(exc, "ctx", None)
    hint = f"; see '{ctx.command_path} --help'" if ctx is not None else ""
    stderr.print(f"[bold red]harness: error:[/] {escape(_message(exc).rstrip('.'))}{escape(hint)}", highlight=False,
                 soft_wrap=True)


def _message(exc: typer.TyperException) -> str:
    format_message = getattr(exc, "format_message", None)
    return str(format_message() if callable(format_message) else exc)
