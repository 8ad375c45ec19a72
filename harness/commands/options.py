"""The options and arguments several commands share, spelled one way everywhere.

One spelling per concept: `--dsn` (a PostgreSQL), `--logs DIR` (the service's log folder), `--json`,
`--target PROFILE`, durations as `30s` / `250ms` / `5m` (plain numbers are seconds), `RUN_ID`. The
cheap checks (a run id's shape, a file that must exist) run while the command line is parsed, so bad
input is refused before any connection is tried.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.errors import LogsError
from harness.service_logs import parse_duration

__all__ = ["DURATION", "Duration", "DsnOpt", "JsonOpt", "LogsDirOpt", "LogsOpt", "RunIdOpt", "StackDsnOpt",
           "TargetOpt",
           "duration", "run_id"]

# A run id as the runbook's tables hold it: a UUID for the reference, any short token for a target.
# What it refuses: the runbook's `<runId>` placeholder pasted as is, whitespace, quotes, an empty id.
_RUN_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,199}")
DURATION = "DURATION"


class Duration(float):
    """Seconds that remember how they were written, so `--help` shows a default as `30s`, not `30.0`."""

    text: str

    def __new__(cls, text: str) -> Duration:
        value = super().__new__(cls, parse_duration(text))
        value.text = text
        return value

    def __str__(self) -> str:
        return self.text

    __repr__ = __str__


def duration(value: str | float) -> float:
    """The option parser of every duration: `30s`, `250ms`, `5m`, `1h`, or plain seconds; a plain float, so a
    value passed on never carries the text (a default `Duration` comes through here too)."""
    try:
        return float(value) if isinstance(value, float) else parse_duration(value)
    except LogsError as exc:
        raise typer.BadParameter(str(exc)) from exc


def run_id(value: str | None) -> str | None:
    """A run id of a plausible shape, checked before any connection."""
    if value is not None and not _RUN_ID.fullmatch(value):
        raise typer.BadParameter(f"{value} is not a run id (letters, digits and - _ . : only); give a real one,"
                                 " e.g. from `harness backlog`")
    return value


DsnOpt = Annotated[Optional[str], typer.Option("--dsn", envvar="HARNESS_DSN", metavar="DSN",
                                               help="PostgreSQL DSN (default: the running stack's, from stack.json).")]
StackDsnOpt = Annotated[Optional[str], typer.Option("--dsn", envvar="HARNESS_POSTGRES_DSN", metavar="DSN",
                                                    help="Use this PostgreSQL server instead of an embedded one.")]
LogsOpt = Annotated[Optional[Path], typer.Option("--logs", metavar="DIR", exists=True, file_okay=False,
                                                 help="Folder of the service's *.log files"
                                                      " (default: the running stack's logs_dir).")]
LogsDirOpt = Annotated[Optional[Path], typer.Option("--logs", metavar="DIR", file_okay=False,
                                                    help="Where the service's logs go (default .harness/logs/<time>).")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
TargetOpt = Annotated[Optional[Path], typer.Option("--target", envvar="HARNESS_TARGET", metavar="PROFILE",
                                                   exists=True, dir_okay=False,
                                                   help="The target profile of the implementation under test"
                                                        " (docs/TARGETS.md; default: the reference service's).")]
RunIdOpt = Annotated[Optional[str], typer.Option("--run", metavar="RUN_ID", callback=run_id,
                                                 help="Only this run.")]
