"""`harness run`: run scenario suites on the local stack and write a report a person and a pipeline can read."""
from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from harness.commands.output import stdout
from harness.report import describe_counts, exit_code
from harness.report.markdown import publish_markdown
from harness.suite_runner import DEFAULT_SUITES, REPO, RunRequest, run_suites, suite_paths
from harness.target import load_profile


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    suite: Optional[list[str]] = typer.Option(
        None, "--suite", "-s", help="suite to run (scenarios/test_NAME.py); repeatable; default: every suite"),
    keyword: Optional[str] = typer.Option(None, "-k", help="only scenarios matching this pytest -k expression"),
    postgres_dsn: Optional[str] = typer.Option(None, help="use this PostgreSQL instead of an embedded one"),
    toxiproxy_url: Optional[str] = typer.Option(None, help="use this toxiproxy server instead of starting one"),
    target: Optional[Path] = typer.Option(None, envvar="HARNESS_TARGET", dir_okay=False,
                                          help="the target profile of the implementation under test (docs/TARGETS.md)"),
    infra: Optional[str] = typer.Option(None, envvar="HARNESS_INFRA",
                                        help="local (embedded PostgreSQL, local toxiproxy) or docker (containers)"),
    out: Path = typer.Option(REPO / "reports", "--out", file_okay=False,
                             help="the reports' root: the run's report is OUT/<time>/, OUT/latest the last complete one"),
    summary_md: Optional[Path] = typer.Option(None, "--summary-md", dir_okay=False,
                                              help="also write the Markdown summary here (appended to"
                                                   " $GITHUB_STEP_SUMMARY whenever that is set)"),
) -> None:
    """Run the suites; exit 0 when all pass, 1 when any fails, 2 when a verdict is unknown, the stack could not
    start, or the run was interrupted (pytest did not finish every collected test)."""
    suites = tuple(suite or DEFAULT_SUITES)
    suite_paths(suites)  # an unknown suite is a usage error before anything starts
    args = [*(("-k", keyword) if keyword else ()), *(("--postgres-dsn", postgres_dsn) if postgres_dsn else ()),
            *(("--toxiproxy-url", toxiproxy_url) if toxiproxy_url else ()),
            *(("--target", str(load_profile(target).source)) if target else ()),  # a bad profile: exit 2 now
            *(("--infra", infra) if infra else ())]
    summary, folder = run_suites(RunRequest(suites=suites, pytest_args=tuple(args), reports_root=out))
    publish_markdown(summary, summary_md)
    counts = describe_counts(summary)
    why = f" ({summary['interrupted']}; {out / 'latest'} not moved)" if summary["verdict"] == "interrupted" else ""
    for failed in (s for s in summary["scenarios"] if s.get("replay")):
        stdout.print(f"[red]fail[/] {escape(failed['nodeid'])}\n  replay: {escape(failed['replay'])}", highlight=False, soft_wrap=True)
    stdout.print(f"[bold]{summary['verdict'].upper()}[/]{why}: {counts}; report: {folder / 'index.html'}")
    raise typer.Exit(exit_code(summary))
