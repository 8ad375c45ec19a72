"""`harness mutants`: run the conformance scenarios against each known-bad variant of the reference
service (tests/mutants/*.patch) and print the kill matrix: each mutant's expected cause (its `# expect:`
regex) beside the failure that killed it. Each mutant runs `--runs` times (default 2); only a kill for
the expected reason in every run counts. The unpatched reference (the control) runs the same scenarios
and must pass them. Exit 0 when every mutant is killed and the control passes, 1 otherwise."""
from __future__ import annotations

import json
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from harness.commands.options import DURATION, Duration, duration
from harness.commands.output import say, stdout
from harness.mutants import DEFAULT_TIMEOUT_S, RUNS, Mutant, MutantResult, control, load_mutants, run_mutants
from harness.progress import shorten

__all__ = ["register"]

_STYLE = {"killed": "green", "survived": "bold red", "wrong_kill": "bold red", "flaky_kill": "bold red",
          "error": "bold yellow"}


def register(app: typer.Typer) -> None:
    app.command("mutants")(mutants)


def mutants(
    only: Annotated[Optional[list[str]], typer.Option("--only", help="run only this mutant (repeatable)")] = None,
    list_: Annotated[bool, typer.Option("--list", help="list the mutants and their scenarios; run nothing")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="print the results as JSON instead of a table")] = False,
    timeout: Annotated[float, typer.Option("--timeout", parser=duration, metavar=DURATION,
                                           help="time per run of a mutant, at least 10s")]
    = Duration(f"{DEFAULT_TIMEOUT_S:g}s"),
    runs: Annotated[int, typer.Option("--runs", min=1, help="runs per mutant; every one must kill it")] = RUNS,
    jobs: Annotated[int, typer.Option("--jobs", min=1, max=8,
                                      help="mutants run at once, each with its own stack")] = 1,
) -> None:
    """Kill matrix: every mutant must be killed by its scenarios."""
    if timeout < 10.0:
        raise typer.BadParameter("a mutant's run needs at least 10s", param_hint="--timeout")
    selected = load_mutants(only=only)
    if list_:
        if as_json:
            print(json.dumps([{"name": m.name, "bug": m.bug, "pattern": m.pattern, "scenarios": list(m.scenarios),
                               "expect": m.expect} for m in selected], indent=2))
            return
        table = Table("mutant", "bug", "scenarios", "expect", title="mutants")
        for m in selected:
            table.add_row(m.name, m.bug, "\n".join(m.scenarios), Text(m.expect))  # a regex, not markup
        stdout.print(table)
        return
    # The unpatched reference on the same scenarios last: a kill counts only if the reference passes them.
    chosen = [*selected, control(selected)]
    if not as_json:
        stdout.print(f"mutants: {len(selected)} and the reference (control), {runs} run(s) each, {jobs} at a time;"
                     f" up to {timeout:.0f} s a run", highlight=False, soft_wrap=True)
    ended: list[MutantResult] = []

    def started(mutant: Mutant) -> None:
        say(Text.assemble("  started ", (mutant.name, "bold"), f": {shorten(mutant.keyword, 100)}"))

    def finished(result: MutantResult) -> None:
        ended.append(result)
        say(result_line(result, len(ended), len(chosen)))

    results = run_mutants(chosen, runs=runs, timeout_s=timeout, jobs=jobs,
                          on_start=None if as_json else started, on_result=None if as_json else finished)
    if as_json:
        print(json.dumps([r.to_json() for r in results], indent=2))
    else:
        _matrix(results)
    good = [r.verdict == ("survived" if r.name == results[-1].name else "killed") for r in results]
    raise typer.Exit(0 if all(good) else 1)


def result_line(r: MutantResult, index: int, total: int) -> Text:
    """`[3/13] cursor_off_by_one: killed  41.2 s  test_x[p]: why`, as a mutant's runs end."""
    observed = f"{r.killed_by}: {r.detail}" if r.killed_by else r.detail
    return Text.assemble(f"[{index}/{total}] ", (r.name, "bold"), ": ", (r.verdict, _STYLE[r.verdict]),
                         (f"  {r.seconds:.1f} s", "dim"), f"  {shorten(observed, 120)}" if observed else "")


def _matrix(results: list[MutantResult]) -> None:
    """One block per mutant (a table would fold the regexes and messages into unreadable columns)."""
    for r in results:
        stdout.print(f"[bold]{escape(r.name)}[/]  [{_STYLE[r.verdict]}]{r.verdict}[/]  runs: {' '.join(r.runs) or '-'}"
                     f"  {r.seconds:.1f} s", highlight=False, soft_wrap=True)
        observed = f"{r.killed_by}: {r.detail[:200]}" if r.killed_by else r.detail[:200]
        for label, text in (("expected", r.expected), ("observed", observed)):  # regexes as written: no markup
            stdout.print(f"  {label}: {text}", markup=False, highlight=False, soft_wrap=True)
    *mutants_run, reference = results
    killed = sum(r.verdict == "killed" for r in mutants_run)
    stdout.print(f"kill matrix: {killed}/{len(mutants_run)} killed for the expected reason in every run; "
                 f"the reference {'passed' if reference.verdict == 'survived' else 'FAILED'} their scenarios; "
                 f"{sum(r.seconds for r in results):.0f} s", highlight=False, soft_wrap=True)
