"""`harness alerts`: the runbook's four alert rules over the database and the logs."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.commands.output import stdout
from harness.commands.runbook_common import (DsnOpt, JsonOpt, LogsOpt, TargetOpt, emit_json, finish, log_spec,
                                             logs_or_none, resolve_dsn, seconds)
from harness.runbook.alerts import AlertThresholds, alerts_json, evaluate_alerts

__all__ = ["register"]


def register(app: typer.Typer) -> None:
    app.command("alerts")(alerts_cmd)


def alerts_cmd(
    dsn: DsnOpt = None, logs: LogsOpt = None, target: TargetOpt = None,
    stall_after: Annotated[str, typer.Option(help="Run stall: started runs older than this.")] = "10m",
    backlog_threshold: Annotated[float, typer.Option(help="Outbox backlog: AVG(lastSeq - nextSeq) above this.")] = 100,
    backlog_for: Annotated[str, typer.Option(help="Outbox backlog: held this long (0s: now only).")] = "5m",
    lag_p95_ms: Annotated[float, typer.Option(help="High lag: p95 of lag_ms above this.")] = 1000,
    lag_window: Annotated[str, typer.Option(help="High lag: over this window.")] = "5m",
    churn_reconnects: Annotated[int, typer.Option(help="SSE churn: more reconnects per runId than this.")] = 10,
    churn_window: Annotated[str, typer.Option(help="SSE churn: within this window.")] = "1m",
    json_: JsonOpt = False,
) -> None:
    """Evaluate the runbook's alert rules: run stall, outbox backlog, high lag, SSE churn.

    Defaults are the runbook's thresholds. Exit 0: none fires; 1: an alert fires; 2: bad input.
    Without a log folder (no --logs, no stack) the log-based rules (high lag, SSE churn) are not evaluated.
    """
    thresholds = AlertThresholds(seconds(stall_after), backlog_threshold, seconds(backlog_for), 0.0, lag_p95_ms,
                                 seconds(lag_window), churn_reconnects, seconds(churn_window))
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
