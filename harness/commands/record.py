"""`harness record start` / `stop`: the flight recorder of the running stack of `harness up`
(harness/control/recorder.py), for an incident worked by hand and then judged with `harness check`."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.commands.output import stdout
from harness.commands.options import DURATION, Duration, JsonOpt, duration
from harness.commands.runbook_common import emit_json
from harness.control.client import ask_owner

__all__ = ["register"]

record_app = typer.Typer(help="Record what streams receive and the fault log while you work an incident by hand.",
                         no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(record_app, name="record")


def _print(lines: list[str]) -> None:
    for line in lines:
        stdout.print(line, highlight=False, soft_wrap=True)


@record_app.command("start")
def start_cmd() -> None:
    """Observe every run active now or created from now on (an SSE subscriber of the harness's own per run)."""
    _print(ask_owner("record_start")["lines"])


@record_app.command("stop")
def stop_cmd(out: Annotated[Optional[Path], typer.Option("--out", file_okay=False,  # noqa: UP007 (typer)
                                                         help="The folder to write (default reports/record-<time>).")]
             = None,
             wait: Annotated[float, typer.Option("--wait", parser=duration, metavar=DURATION,
                                                 help="How long runs may take to end before the observers stop.")]
             = Duration("10s"),
             json_: JsonOpt = False) -> None:
    """Stop recording and write a folder `harness check` judges: history.jsonl (the observers' frames and
    the fault log's windows), snapshot.json (the recorded runs' rows) and checks.json (the verdict now)."""
    folder = (out or Path("reports") / f"record-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    result = ask_owner("record_stop", {"out": str(folder), "wait_s": float(wait)})
    if json_:
        emit_json(result)
        return
    _print(result["lines"])
    verdict = {True: "pass", False: "FAIL"}.get(result["valid"], "unknown")
    _print([f"verdict: {verdict} (details: harness check {folder})"])
