"""`harness explore`: generated fault schedules (a Hypothesis state machine) against a fresh local
stack, with random seeds and a larger budget than `make test`. Exit 0 when every schedule keeps the
invariants; 1 with the shrunk schedule printed and written to `reproduction.txt` when one does not."""
from __future__ import annotations

import contextlib
import random
import sys
from datetime import datetime
from pathlib import Path
from typing import Annotated, Callable, Optional

import typer
from rich.text import Text

from harness.commands.options import JsonOpt
from harness.commands.output import say, say_started, stdout
from harness.commands.runbook_common import emit_json
from harness.errors import ConfigError
from harness.progress import shorten
from harness.stack import Intervals, LocalStack, StackConfig, install_signal_handlers

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("explore")(explore_cmd)


def example_line(number: int, steps: int, outcome: str, seconds: float, *, budget: int, shrinking: bool) -> Text:
    """`[3/20] 7 steps: kept every invariant  12.3 s`; once one failed, Hypothesis shrinks it: `[shrinking 4]`."""
    where = f"[shrinking {number}]" if shrinking else f"[{number}/{budget}]"
    style = "green" if outcome == "kept every invariant" else "red"
    return Text.assemble(f"{where} {steps} steps: ", (shorten(outcome, 120), style), (f"  {seconds:.1f} s", "dim"))


def _example_lines(budget: int) -> Callable[[int, int, str, float], None]:
    """explore_report's `on_example`: a line per example, which knows when the shrinking began."""
    failed: list[int] = []

    def said(number: int, steps: int, outcome: str, seconds: float) -> None:
        say(example_line(number, steps, outcome, seconds, budget=budget, shrinking=bool(failed)))
        if outcome != "kept every invariant":  # a failure, or a step that raised: Hypothesis shrinks it next
            failed.append(number)
    return said


def explore_cmd(
    examples: Annotated[int, typer.Option("--examples", min=1, help="schedules to generate")] = 20,
    steps: Annotated[int, typer.Option("--steps", min=1, help="steps per schedule at most")] = 12,
    seed: Annotated[Optional[int], typer.Option("--seed", help="replay a seed (default: a random one)")] = None,
    out: Annotated[Optional[Path], typer.Option("--out", help="folder for history and reproduction"
                                                               " (default reports/explore-<time>)")] = None,
    json_: JsonOpt = False,
) -> None:
    """Generated fault schedules; on a failure, the shrunk schedule is the reproduction.

    Exit 0: every schedule keeps the invariants; 1: one does not (its reproduction printed); 2: bad input.
    """
    try:  # hypothesis is a `test` extra: import it only when this command runs
        from harness.explore import ExploreBudget, explore_report
    except ModuleNotFoundError as exc:
        raise ConfigError(f"harness explore needs {exc.name}: pip install -e '.[test]'") from exc
    seed = seed if seed is not None else random.randrange(2**32)
    folder = (out or Path("reports") / f"explore-{datetime.now():%Y%m%d-%H%M%S}").resolve()
    folder.mkdir(parents=True, exist_ok=True)
    install_signal_handlers()
    config = StackConfig.from_env(intervals=Intervals.fast(), logs_dir=folder / "logs")
    with contextlib.redirect_stdout(sys.stderr) if json_ else contextlib.nullcontext():  # stdout: the JSON only
        stdout.print(f"explore: {examples} schedule(s) of up to {steps} steps, seed {seed}; files in {folder}",
                     soft_wrap=True)
        with LocalStack(config, on_started=say_started) as stack:
            outcome = explore_report(stack, ExploreBudget(examples=examples, steps=steps, seed=seed), folder,
                                     on_example=_example_lines(examples))
    if json_:
        emit_json({"passed": outcome.passed, "examples": outcome.examples, "seconds": outcome.seconds, "seed": seed,
                   "folder": str(folder), "reproduction": outcome.reproduction or None,
                   "steps": list(outcome.steps)})
    elif outcome.passed:
        stdout.print(f"[green]passed[/]: {outcome.examples} example(s) in {outcome.seconds:.0f} s (seed {seed})",
                     soft_wrap=True)
    else:
        print(outcome.reproduction)
        stdout.print(f"[bold red]failed[/] (seed {seed}); reproduction written to {folder / 'reproduction.txt'}",
                     soft_wrap=True)
    if not outcome.passed:
        raise typer.Exit(1)
