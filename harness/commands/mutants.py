"""`harness mutants`: run the conformance scenarios against each known-bad variant of the reference
service (tests/mutants/*.patch) and print the kill matrix. Exit 0 when every mutant is killed,
1 when any survives or errors."""
from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.table import Table

from harness.commands.output import stdout
from harness.mutants import DEFAULT_TIMEOUT_S, MutantResult, load_mutants, run_mutants

__all__ = ["register"]

_STYLE = {"killed": "green", "survived": "bold red", "error": "bold yellow"}


def register(app: typer.Typer) -> None:
    app.command("mutants")(mutants)


def mutants(
    only: Annotated[Optional[list[str]], typer.Option("--only", help="run only this mutant (repeatable)")] = None,
    list_: Annotated[bool, typer.Option("--list", help="list the mutants and their scenarios; run nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the results as JSON instead of a table")] = False,
    timeout: Annotated[float, typer.Option("--timeout", min=10.0, help="seconds per mutant")] = DEFAULT_TIMEOUT_S,
) -> None:
    """Kill matrix: every mutant must be killed by its scenarios."""
    selected = load_mutants(only=only)
    if list_:
        if as_json:
            print(json.dumps([{"name": m.name, "bug": m.bug, "pattern": m.pattern, "scenarios": list(m.scenarios)}
                              for m in selected], indent=2))
            return
        table = Table("mutant", "bug", "scenarios", title="mutants")
        for m in selected:
            table.add_row(m.name, m.bug, "\n".join(m.scenarios))
        stdout.print(table)
        return
    progress = None if as_json else (lambda r: stdout.print(f"{r.name}: [{_STYLE[r.verdict]}]{r.verdict}[/] ({r.seconds:.1f} s)"))
    results = run_mutants(selected, timeout_s=timeout, on_result=progress)
    if as_json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        stdout.print(_matrix(results))
    raise typer.Exit(0 if all(r.verdict == "killed" for r in results) else 1)


def _matrix(results: list[MutantResult]) -> Table:
    table = Table(title="kill matrix")
    table.add_column("mutant", no_wrap=True)
    table.add_column("result", no_wrap=True)
    table.add_column("killed by / detail", overflow="fold")
    table.add_column("s", justify="right", no_wrap=True)
    for r in results:
        table.add_row(r.name, f"[{_STYLE[r.verdict]}]{r.verdict}[/]",
                      r.killed_by if r.verdict == "killed" else r.detail, f"{r.seconds:.1f}")
    total = sum(r.seconds for r in results)
    killed = sum(r.verdict == "killed" for r in results)
    table.caption = f"{killed}/{len(results)} killed in {total:.0f} s"
    return table
