"""`harness check DIR`: re-run the checkers offline over a scenario folder or a whole report, judging
each scenario as the run did (its invariants, opts and expected verdicts)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from harness.commands.output import stdout
from harness.commands.options import JsonOpt
from harness.commands.runbook_common import emit_json
from harness.checks import Valid
from harness.recheck import Recheck, overall, recheck_all

__all__ = ["register"]

_STYLE = {True: ("pass", "green"), False: ("FAIL", "bold red")}
_EXIT: dict[Valid, int] = {True: 0, False: 1, "unknown": 2}
_UNKNOWN = ("unknown", "yellow")


def register(app: typer.Typer) -> None:
    app.command("check")(check_cmd)


def check_cmd(
    folder: Annotated[Path, typer.Argument(
        exists=True, help="A scenario folder (history.jsonl + snapshot.json) or a report folder.")],
    invariant: Annotated[Optional[list[str]], typer.Option("--invariant", "-i",  # noqa: UP007 (typer)
                                                           help="Only this invariant (repeatable).")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every invariant, also those the scenario did not judge "
                                                      "(no expected verdicts).")] = False,
    json_: JsonOpt = False,
) -> None:
    """Re-check a recorded history and snapshot with the checkers, without a stack.

    By default each scenario is judged as the run judged it: the invariants it named, with its opts, an
    expected verdict (a violation the scenario provoked on purpose) counting as a pass.
    Exit 0: every scenario passes; 1: one fails; 2: one is unknown, or bad input.
    """
    rechecks = recheck_all(folder, invariant or [], every=every)
    verdict = overall(rechecks)
    if json_:
        emit_json({"valid": verdict, "scenarios": [r.to_dict() for r in rechecks]})
    else:
        _table(rechecks, verdict)
    raise typer.Exit(_EXIT[verdict])


def _table(rechecks: list[Recheck], verdict: Valid) -> None:
    for r in rechecks:
        _line(f"[bold]{r.folder.name}[/]")
        if r.result is None:
            _line(f"  skipped  {r.skipped}")
            continue
        _line(f"  {'verdict':8} {'invariant':26} {'recorded':9} {'expected':9} detail")
        for name, entry in r.result.evidence.items():
            was, wanted = str(r.recorded.get(name, "-")), str(r.expected.get(name, "-"))
            note = "as the scenario expected: " if name in r.expected and entry.get("valid") == r.expected[name] else ""
            _line(f"  {_mark(entry.get('valid'), 8)} {name:26} {was:9} {wanted:9} {note}{_detail(entry)}")
        _line(f"  scenario: {_mark(r.valid, 0)}")
    _line(f"verdict: {_mark(verdict, 0)}")


def _mark(valid: Any, width: int) -> str:
    text, style = _STYLE.get(valid, _UNKNOWN) if isinstance(valid, bool) else _UNKNOWN
    return f"[{style}]{text}[/]" + " " * max(0, width - len(text))


def _line(text: str) -> None:
    stdout.print(text, highlight=False, soft_wrap=True)


def _detail(entry: dict[str, Any]) -> str:
    if entry.get("valid") is True:
        return ""
    detail = entry.get("counterexample") or entry.get("reason") or ""
    return str(detail)[:120].replace("[", "\\[")
