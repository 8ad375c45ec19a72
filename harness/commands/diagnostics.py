"""`harness diagnose`, `harness lag`, `harness backlog`: the runbook's diagnostics from a terminal."""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Optional

import typer
from rich.table import Table

from harness.commands.output import stdout
from harness.commands.options import (DURATION, Duration, DsnOpt, JsonOpt, LogsOpt, RunIdOpt, TargetOpt, duration,
                                      run_id as check_run_id)
from harness.commands.runbook_common import (emit_json, finish, log_spec, logs_or_none, resolve_dsn,
                                             resolve_logs_dir)
from harness.runbook.backlog import BACKLOG_SQL, backlog
from harness.runbook.diagnose import Diagnosis, diagnose
from harness.runbook.lag_report import LagGroup, LagReport, lag_report

__all__ = ["register"]


class By(str, Enum):
    type = "type"
    run = "run"


class Basis(str, Enum):
    avg = "avg"
    p50 = "p50"
    p95 = "p95"
    p99 = "p99"


def register(app: typer.Typer) -> None:
    app.command("diagnose")(diagnose_cmd)
    app.command("lag")(lag_cmd)
    app.command("backlog")(backlog_cmd)


def diagnose_cmd(run_id: Annotated[str, typer.Argument(callback=check_run_id, help="The run to diagnose.")],
                 dsn: DsnOpt = None, logs: LogsOpt = None, target: TargetOpt = None, json_: JsonOpt = False) -> None:
    """The "Run stuck" checklist, step by step: one verdict, its evidence and the runbook's action.

    Exit 0: finished or outbox caught up; 1: stuck, seq gap, never started; 2: bad input.
    """
    logs_dir = resolve_logs_dir(logs) if logs is not None else logs_or_none(None)
    result = diagnose(resolve_dsn(dsn), run_id, logs_dir, log_spec(target))
    emit_json(result.to_dict()) if json_ else _print_diagnosis(result)
    finish(not result.healthy)


def _print_diagnosis(d: Diagnosis) -> None:
    for step in d.steps:
        stdout.print(f"[bold]step {step.number}[/] {step.title}: {step.finding}", highlight=False)
    color = "green" if d.healthy else "red"
    stdout.print(f"[bold {color}]verdict: {d.verdict}[/] - {d.summary}", highlight=False)
    stdout.print("evidence: " + ", ".join(f"{k}={v}" for k, v in d.evidence.items()), highlight=False)
    for i, action in enumerate(d.action, 1):
        stdout.print(f"action {i}: {action}", highlight=False, markup=False)


def _window(value: str | float) -> float | None:
    return None if value == "all" else duration(value)


def lag_cmd(logs: LogsOpt = None,
            since: Annotated[Optional[float], typer.Option(
                parser=_window, metavar=DURATION,
                help="Window: lines of the last 30s / 5m / 1h; 'all' for every line.")]
            = Duration("5m"),
            by: Annotated[Optional[By], typer.Option(help="Also one row per event type or per run.")] = None,
            basis: Annotated[Basis, typer.Option(help="Statistic the class is read from.")] = Basis.p95,
            run: RunIdOpt = None,
            target: TargetOpt = None, json_: JsonOpt = False) -> None:
    """avg / p50 / p95 / p99 of lag_ms from metric.events_published lines, with the runbook's class.

    Classes: normal < 100 ms, warning 100-500 ms, critical > 500 ms or an increasing trend.
    Exit 0: normal (or no data); 1: warning or critical; 2: bad input.
    """
    report = lag_report(resolve_logs_dir(logs), since_s=since, basis=basis.value,
                        by=by.value if by else None, run_id=run, spec=log_spec(target))
    emit_json(report.to_dict()) if json_ else _print_lag(report)
    finish(not report.healthy)


def _print_lag(r: LagReport) -> None:
    window = "all lines" if r.window_s is None else f"last {r.window_s:g}s"
    table = Table(title=f"lag_ms of metric.events_published ({window}, class from {r.basis})", header_style="bold")
    for col in ("group", "count", "avg", "p50", "p95", "p99", "max", "class"):
        table.add_column(col, justify="left" if col in ("group", "class") else "right")
    for g in [r.overall, *r.groups]:
        table.add_row(g.name, str(g.count), *(_ms(getattr(g, k)) for k in ("avg", "p50", "p95", "p99", "max")),
                      _cls(g))
    stdout.print(table)
    stdout.print(f"class: {_cls(r.overall)}")


def _ms(value: float | None) -> str:
    return "-" if value is None else f"{value:.1f}"


def _cls(g: LagGroup) -> str:
    color = {"normal": "green", "warning": "yellow", "critical": "red"}.get(g.cls, "dim")
    return f"[{color}]{g.label}[/]"


def backlog_cmd(dsn: DsnOpt = None, json_: JsonOpt = False) -> None:
    """The runbook's top-ten outbox backlog of started runs ("Check outbox state without changes")."""
    rows = backlog(resolve_dsn(dsn))
    if json_:
        emit_json({"query": BACKLOG_SQL, "rows": [r.to_dict() for r in rows]})
        return
    table = Table(title="outbox backlog of started runs (top 10)", header_style="bold")
    for col in ("runId", "nextSeq", "lastSeq", "backlog"):
        table.add_column(col, justify="left" if col == "runId" else "right")
    for r in rows:
        table.add_row(r.run_id, str(r.next_seq), str(r.last_seq), str(r.backlog))
    stdout.print(table if rows else "no started runs")


