"""`harness run`: run scenario suites on the local stack and write a report a person and a pipeline can read."""
from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any, Optional

import typer
from rich.text import Text

from harness.commands.options import JsonOpt, StackDsnOpt, TargetOpt
from harness.commands.output import say, say_event
from harness.commands.runbook_common import emit_json
from harness.commands.stack import InfraChoice, NginxChoice
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
    dsn: StackDsnOpt = None,
    toxiproxy_url: Optional[str] = typer.Option(None, help="use this toxiproxy server instead of starting one"),
    target: TargetOpt = None,
    infra: Optional[InfraChoice] = typer.Option(
        None, envvar="HARNESS_INFRA", help="local (embedded PostgreSQL, local toxiproxy) or docker (containers)"),
    service_command: Optional[str] = typer.Option(None, envvar="HARNESS_SERVICE_COMMAND",
                                                  help="the service's command (default: python -m reference_impl)"),
    service_dir: Optional[Path] = typer.Option(None, envvar="HARNESS_SERVICE_DIR", exists=True, file_okay=False,
                                               help="source directory of the service (a patched copy)"),
    nginx: Optional[NginxChoice] = typer.Option(None, envvar="HARNESS_NGINX",
                                                help="nginx in front of the API: on (SSE-ready), buffered or off"),
    out: Path = typer.Option(REPO / "reports", "--out", file_okay=False,
                             help="the reports' root: the run's report is OUT/<time>/, OUT/latest the last complete one"),
    summary_md: Optional[Path] = typer.Option(None, "--summary-md", dir_okay=False,
                                              help="also write the Markdown summary here (appended to"
                                                   " $GITHUB_STEP_SUMMARY whenever that is set)"),
    json_: JsonOpt = False,
    pytest_args: Optional[list[str]] = typer.Argument(None, help="after `--`: passed to pytest as they are"),
) -> None:
    """Run the suites and write a report (reports/<time>/: index.html, summary.json, junit.xml).

    Exit 0 when all pass, 1 when any fails, 2 when a verdict is unknown, the stack could not start, or the run
    was interrupted (pytest did not finish every collected test). `--json` prints summary.json (the report
    folder on stderr); `harness run -s delivery -- -x --maxfail 2` passes `-x --maxfail 2` to pytest.
    """
    suites = tuple(suite or DEFAULT_SUITES)
    suite_paths(suites)  # an unknown suite is a usage error before anything starts
    profile = load_profile(target)  # a bad profile: exit 2 now; none given: the reference's
    # what chose the implementation: also in the commands printed to rerun a failure (unlike a DSN, which may
    # hold a password, and belongs to this machine)
    options = [*(("--target", str(profile.source)) if target else ()), *(("--infra", infra.value) if infra else ())]
    # the service's own folder or command and nginx: named in the header (their environment variables too)
    args = [*(("-k", keyword) if keyword else ()), *(("--postgres-dsn", dsn) if dsn else ()),
            *(("--toxiproxy-url", toxiproxy_url) if toxiproxy_url else ()), *options,
            *(("--service-command", service_command) if service_command else ()),
            *(("--service-dir", str(service_dir.resolve())) if service_dir else ()),
            *(("--nginx", nginx.value) if nginx else ()), *(pytest_args or ())]

    def progress(event: dict[str, Any]) -> None:
        if event["event"] == "report_folder":
            service = _service_under_test(profile, service_dir, service_command, nginx)
            for line in header(list(suites), keyword, service, Path(event["folder"])):
                say(line)
        else:
            say_event(event)

    with contextlib.redirect_stdout(sys.stderr) if json_ else contextlib.nullcontext():  # stdout: the JSON only
        summary, folder = run_suites(RunRequest(suites=suites, pytest_args=tuple(args), reports_root=out), progress)
        publish_markdown(summary, summary_md)
        if summary["verdict"] == "interrupted" or summary.get("collected") in (None, 0):
            _pytest_tail(folder / "pytest.log")  # pytest's own words: a usage error, a crash, what it collected
        for line in closing(summary, folder, options):
            say(line)
    if json_:
        written = folder / "summary.json"
        emit_json(json.loads(written.read_text()) if written.is_file() else summary)
    raise typer.Exit(exit_code(summary))


def _service_under_test(profile: TargetProfile, service_dir: Path | None, service_command: str | None,
                        nginx: NginxChoice | None) -> str:
    """The target's name and profile, then what else chose the service (option or environment): its own folder
    or command, nginx in front."""
    where = [f"{name}={value}" for name, value in (("HARNESS_SERVICE_DIR", service_dir),
                                                    ("HARNESS_SERVICE_COMMAND", service_command),
                                                    ("HARNESS_NGINX", nginx.value if nginx else None)) if value]
    return f"{profile.name} ({profile.source}{''.join(f', {w}' for w in where)})"


def _pytest_tail(log: Path, lines: int = 15) -> None:
    try:
        tail = [line for line in log.read_text(errors="replace").splitlines() if line.strip()][-lines:]
    except OSError:
        return
    for line in tail:
        say(Text(f"  | {line}", style="dim"))
