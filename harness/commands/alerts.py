"""`harness alerts`: the runbook's four alert rules over the database and the logs."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.commands.output import stdout
from harness.commands.options import DURATION, Duration, DsnOpt, JsonOpt, LogsOpt, TargetOpt, duration
from harness.commands.runbook_common import emit_json, finish, log_spec, logs_or_none, resolve_dsn
from harness.runbook.alerts import AlertThresholds, alerts_json, evaluate_alerts

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("alerts")(alerts_cmd)


def alerts_cmd(
    dsn: DsnOpt = None, logs: LogsOpt = None, target: TargetOpt = None,
    stall_after: Annotated[float, typer.Option(parser=duration, metavar=DURATION,
                                               help="Run stall: started runs older than this.")] = Duration("10m"),
    backlog_threshold: Annotated[float, typer.Option(help="Outbox backlog: AVG(lastSeq - nextSeq) above this.")] = 100,
    backlog_for: Annotated[float, typer.Option(parser=duration, metavar=DURATION,
                                               help="Outbox backlog: held this long (0s: now only).")] = Duration("5m"),
    lag_p95_ms: Annotated[float, typer.Option(help="High lag: p95 of lag_ms above this.")] = 1000,
    lag_window: Annotated[float, typer.Option(parser=duration, metavar=DURATION,
                                              help="High lag: over this window.")] = Duration("5m"),
    churn_reconnects: Annotated[int, typer.Option(help="SSE churn: more reconnects per runId than this.")] = 10,
    churn_window: Annotated[float, typer.Option(parser=duration, metavar=DURATION,
                                                help="SSE churn: within this window.")] = Duration("1m"),
    json_: JsonOpt = False,
) -> None:
    """Evaluate the runbook's alert rules: run stall, outbox backlog, high lag, SSE churn.

    Defaults are the runbook's thresholds. Exit 0: none fires; 1: an alert fires; 2: bad input.
    Without a log folder (no --logs, no stack) the log-based rules (high lag, SSE churn) are not evaluated.
    """
    thresholds = AlertThresholds(stall_after, backlog_threshold, backlog_for, 0.0, lag_p95_ms, lag_window,
                                 churn_reconnects, churn_window)
    logs_dir = logs if logs is not None else logs_or_none(None)
    results = evaluate_alerts(resolve_dsn(dsn), logs_dir, thresholds, log_spec(target))
    if logs_dir is None:
        for r in results:
            if r.name in ("high_lag", "sse_churn"):
                r.why = "not evaluated: no log folder (pass --logs DIR)"
    firing = [r for r in results if r.firing]
    if json_:
        emit_json(alerts_json(results))
    else:
        for r in results:
            mark = "[bold red]FIRING[/]" if r.firing else "[green]ok[/]    "
            stdout.print(f"{mark} {r.name:15} {r.why}", highlight=False)
            if r.firing:
                stdout.print(f"       action: {r.action}", highlight=False, markup=False)
        stdout.print(f"{len(firing)} alert(s) firing" + (f": {', '.join(r.name for r in firing)}" if firing else ""))
    finish(bool(firing))
