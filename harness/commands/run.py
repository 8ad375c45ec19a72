"""`harness run`: run scenario suites on the local stack and write a report a person and a pipeline can read."""
from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape

from harness.commands.options import JsonOpt, StackDsnOpt, TargetOpt
from harness.commands.output import stdout
from harness.commands.runbook_common import emit_json
from harness.commands.stack import InfraChoice, NginxChoice
from harness.report import describe_counts, exit_code
from harness.suite_runner import DEFAULT_SUITES, RunRequest, run_suites, suite_paths
from harness.target import load_profile


def register(app: typer.Typer) -> None:
    app.command("run")(run)


def run(
    suite: Optional[list[str]] = typer.Option(
        None, "--suite", "-s", help="suite to run (scenarios/test_NAME.py); repeatable; default: every suite"),
    keyword: Optional[str] = typer.Option(None, "-k", help="only scenarios matching this pytest -k expression"),
    dsn: StackDsnOpt = None,
    toxiproxy_url: Optional[str] = typer.Option(None, help="use this toxiproxy server instead of starting one"),
    target: TargetOpt = None,
    infra: Optional[InfraChoice] = typer.Option(None, envvar="HARNESS_INFRA",
                                                help="local (embedded PostgreSQL, local toxiproxy) or docker (containers)"),
    service_command: Optional[str] = typer.Option(None, envvar="HARNESS_SERVICE_COMMAND",
                                                  help="the service's command (default: python -m reference_impl)"),
    service_dir: Optional[Path] = typer.Option(None, envvar="HARNESS_SERVICE_DIR", exists=True, file_okay=False,
                                               help="source directory of the service (a patched copy)"),
    nginx: Optional[NginxChoice] = typer.Option(None, envvar="HARNESS_NGINX",
                                                help="nginx in front of the API: on (SSE-ready), buffered or off"),
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
    args = [*(("-k", keyword) if keyword else ()), *(("--postgres-dsn", dsn) if dsn else ()),
            *(("--toxiproxy-url", toxiproxy_url) if toxiproxy_url else ()),
            *(("--target", str(load_profile(target).source)) if target else ()),  # a bad profile: exit 2 now
            *(("--infra", infra.value) if infra else ()), *(("--service-command", service_command) if service_command else ()),
            *(("--service-dir", str(service_dir.resolve())) if service_dir else ()),
            *(("--nginx", nginx.value) if nginx else ()), *(pytest_args or ())]
    with contextlib.redirect_stdout(sys.stderr) if json_ else contextlib.nullcontext():  # stdout: the JSON only
        summary, folder = run_suites(RunRequest(suites=suites, pytest_args=tuple(args)))
    if json_:
        written = folder / "summary.json"
        emit_json(json.loads(written.read_text()) if written.is_file() else summary)
        print(f"report: {folder}", file=sys.stderr)
        raise typer.Exit(exit_code(summary))
    counts = describe_counts(summary)
    why = f" ({summary['interrupted']}; reports/latest not moved)" if summary["verdict"] == "interrupted" else ""
    for failed in (s for s in summary["scenarios"] if s.get("replay")):
        stdout.print(f"[red]fail[/] {escape(failed['nodeid'])}\n  replay: {escape(failed['replay'])}", highlight=False, soft_wrap=True)
    stdout.print(f"[bold]{summary['verdict'].upper()}[/]{why}: {counts}; report: {folder / 'index.html'}")
    raise typer.Exit(exit_code(summary))
