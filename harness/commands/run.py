"""`harness run`: run scenario suites on the local stack and write a report a person and a pipeline can read."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Optional

import typer
from rich.text import Text

from harness.commands.output import say, say_event
from harness.progress import closing, header
from harness.report import exit_code
from harness.report.markdown import publish_markdown
from harness.suite_runner import DEFAULT_SUITES, REPO, RunRequest, run_suites, suite_paths
from harness.target import TargetProfile, load_profile


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
    profile = load_profile(target)  # a bad profile: exit 2 now; none given: the reference's
    # what chose the implementation: also in the commands printed to rerun a failure (unlike a DSN, which may
    # hold a password, and belongs to this machine)
    options = [*(("--target", str(profile.source)) if target else ()), *(("--infra", infra) if infra else ())]
    args = [*(("-k", keyword) if keyword else ()), *(("--postgres-dsn", postgres_dsn) if postgres_dsn else ()),
            *(("--toxiproxy-url", toxiproxy_url) if toxiproxy_url else ()), *options]

    def progress(event: dict[str, Any]) -> None:
        if event["event"] == "report_folder":
            for line in header(list(suites), keyword, _service_under_test(profile), Path(event["folder"])):
                say(line)
        else:
            say_event(event)

    summary, folder = run_suites(RunRequest(suites=suites, pytest_args=tuple(args), reports_root=out), progress)
    publish_markdown(summary, summary_md)
    if summary["verdict"] == "interrupted" or summary.get("collected") in (None, 0):
        _pytest_tail(folder / "pytest.log")  # pytest's own words: a usage error, a crash, what it collected
    for line in closing(summary, folder, options):
        say(line)
    raise typer.Exit(exit_code(summary))


def _service_under_test(profile: TargetProfile) -> str:
    """The target's name and profile, and the service's own folder or command when the environment sets one."""
    where = [f"{var}={os.environ[var]}" for var in ("HARNESS_SERVICE_DIR", "HARNESS_SERVICE_COMMAND")
             if os.environ.get(var)]
    return f"{profile.name} ({profile.source}{''.join(f', {w}' for w in where)})"


def _pytest_tail(log: Path, lines: int = 15) -> None:
    try:
        tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-lines:]
    except OSError:
        return
    for line in tail:
        say(Text(f"  | {line}", style="dim"))
