"""`harness replay REPORT_DIR`: run a report's failed scenarios again, as recorded in their
`reproduction.json`, and say whether each failure reproduced. Exit 0 when every one did, 1 when one did
not, 2 on a bad report folder or when a replay could not be judged."""
from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from harness.commands.options import JsonOpt
from harness.commands.output import say_event, stdout
from harness.commands.runbook_common import emit_json

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("replay")(replay_cmd)


def replay_cmd(
    report_dir: Annotated[Path, typer.Argument(exists=True, file_okay=False,
                                               help="a report folder of `harness run` (reports/<time>)")],
    scenario: Annotated[Optional[str], typer.Option(
        "--scenario", help="only this one: its name (test_x or test_x[param]) or node id; default: every failed one")] = None,
    times: Annotated[int, typer.Option("--times", min=1, help="replays of each scenario")] = 1,
    json_: JsonOpt = False,
) -> None:
    """Replay failed scenarios of a report; the new reports go beside it (REPORT_DIR/replay-<time>/)."""
    from harness.replay import replay, replay_exit

    with contextlib.redirect_stdout(sys.stderr) if json_ else contextlib.nullcontext():  # stdout: the JSON only
        results, out = replay(report_dir, scenario, times, say=_say, progress=say_event)
    if json_:
        emit_json({"reports": str(out), "scenarios": [{"nodeid": r.nodeid, "outcome": r.outcome,
                                                        "verdicts": list(r.verdicts)} for r in results]})
        raise typer.Exit(replay_exit(results))
    colour = {"reproduced": "green", "did_not_reproduce": "red"}
    for result in results:
        stdout.print(f"[{colour.get(result.outcome, 'yellow')}]{escape(result.describe())}[/]: {escape(result.nodeid)}",
                     highlight=False, soft_wrap=True)
    _say(f"new reports: {out}")
    raise typer.Exit(replay_exit(results))


def _say(line: str) -> None:
    stdout.print(line, highlight=False, markup=False, soft_wrap=True)
