"""`harness schema-check` and `harness runbook-check`: does the live schema fit the runbook's SQL?"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.commands.output import stdout
from harness.commands.options import DsnOpt, JsonOpt, LogsOpt
from harness.commands.runbook_common import emit_json, finish, logs_or_none, resolve_dsn
from harness.runbook.context import stack_json
from harness.errors import ConfigError
from harness.runbook.runbook_check import check_runbook
from harness.runbook.schema_check import schema_check

__all__ = ["register"]

_STATUS = {"ok": ("ok", "green"), "error": ("broken", "red"), "unexercised": ("not exercised", "yellow"),
           "skipped": ("skipped", "dim")}
SearchPathOpt = Annotated[Optional[str], typer.Option("--search-path", metavar="SCHEMA",
                                                      help="search_path for the checks, e.g. a schema variant.")]


def register(app: typer.Typer) -> None:
    app.command("schema-check")(schema_check_cmd)
    app.command("runbook-check")(runbook_check_cmd)


def schema_check_cmd(dsn: DsnOpt = None, search_path: SearchPathOpt = None, json_: JsonOpt = False) -> None:
    """The runbook's required indexes and keys (with their uniqueness) and its columns, unquoted.

    Exit 0: all present; 1: something missing (named); 2: bad input or unreachable.
    """
    report = schema_check(resolve_dsn(dsn), search_path)
    if json_:
        emit_json(report.to_dict())
    else:
        for req in report.requirements:
            mark = "[green]ok[/]     " if req.ok else "[red]MISSING[/]"
            detail = f"({req.found})" if req.ok and req.found else req.problem
            stdout.print(f"{mark} {req.what} {detail}", highlight=False)
        stdout.print("schema: ok" if report.ok else f"schema: {len(report.missing)} missing: {'; '.join(report.missing)}",
                     highlight=False)
    finish(not report.ok)


def runbook_check_cmd(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="The runbook, in Markdown.")],
    dsn: DsnOpt = None, logs: LogsOpt = None, search_path: SearchPathOpt = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", metavar="NAME=VALUE",
                                                      help="Placeholder value, e.g. runId=abc.")] = None,
    exercise_: Annotated[bool, typer.Option("--exercise", help="First drive one short run through the running"
                                                               " stack, so its log pipelines have lines.")] = False,
    json_: JsonOpt = False,
) -> None:
    """Check every SQL block (EXPLAIN in a read-only, rolled-back transaction) and log pipeline of a runbook.

    A log pipeline no log line exercises yet (a stack without traffic) is "not exercised", not broken.
    Exit 0: every checked block ok or not exercised; 1: a block is broken; 2: bad input or unreachable.
    """
    values = {}
    for pair in set_ or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--set expects NAME=VALUE, got '{pair}'")
        values[key] = value
    logs_dir = logs if logs is not None else logs_or_none(None)
    if exercise_:
        from harness.runbook.exercise import exercise

        info = stack_json()
        if not info or logs_dir is None:
            raise ConfigError("--exercise drives a run through the running stack: start one with `harness up`")
        exercise(str(info["api_url"]), logs_dir)
    results = check_runbook(file, resolve_dsn(dsn), logs_dir=logs_dir, values=values, search_path=search_path)
    broken = [r for r in results if r.status == "error"]
    if json_:
        emit_json({"file": str(file), "ok": not broken, "blocks": [r.to_dict() for r in results]})
    else:
        for r in results:
            label, color = _STATUS.get(r.status, (r.status, "dim"))
            first = next((ln.strip() for ln in r.text.splitlines()
                          if ln.strip() and not ln.strip().startswith(("--", "#"))), "")
            stdout.print(f"[{color}]{label:13}[/] {r.kind:8} {r.where}: {first[:70]}", highlight=False)
            if r.message:
                stdout.print(f"{'':14}{r.message}", highlight=False, markup=False)
            for detail in r.details[1:] if r.status == "error" else []:
                stdout.print(f"{'':14}{detail}", highlight=False, markup=False)
        count = {status: sum(r.status == status for r in results) for status in _STATUS}
        checked = count["ok"] + count["error"]
        stdout.print(f"{count['ok']} of {checked} checked block(s) ok, {count['error']} broken,"
                     f" {count['unexercised']} not exercised, {count['skipped']} skipped", highlight=False)
    finish(bool(broken))
