"""`harness recover restart-outbox` and `harness recover cancel-run RUN_ID --confirm`: the runbook's safe actions."""

from __future__ import annotations

from typing import Annotated

import typer

from harness.commands.output import stdout
from harness.commands.options import DURATION, Duration, DsnOpt, JsonOpt, duration, run_id as check_run_id
from harness.commands.runbook_common import emit_json, resolve_dsn
from harness.control.client import ask_owner
from harness.runbook.recovery import cancel_run

__all__ = ["register"]

recover_app = typer.Typer(help="The runbook's safe recovery actions (never sets publishedAt).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(recover_app, name="recover")


@recover_app.command("restart-outbox")
def restart_outbox_cmd(
    timeout: Annotated[float, typer.Option(parser=duration, metavar=DURATION,
                                           help="How long each worker may take to stop, and to be healthy again.")]
    = Duration("30s"),
    json_: JsonOpt = False,
) -> None:
    """Restart the outbox worker(s) of the stack started by `harness up` (its owner does: SIGTERM, start again)."""
    result = ask_owner("restart_outbox", {"timeout": timeout})
    if json_:
        emit_json(result)
        return
    for r in result["restarted"]:
        stdout.print(f"restarted {r['name']}: pid {r['old_pid']} -> {r['new_pid']}", highlight=False)
    stdout.print("next: watch metric.events_published for progress (`harness lag --since 1m`);"
                 " still stuck after 30s -> check DB locks (`harness diagnose RUN_ID`)", highlight=False)


@recover_app.command("cancel-run")
def cancel_run_cmd(
    run_id: Annotated[str, typer.Argument(callback=check_run_id, help="The stuck run.")],
    confirm: Annotated[bool, typer.Option("--confirm", help="Required: this is the runbook's last resort.")] = False,
    stuck_after: Annotated[float, typer.Option(parser=duration, metavar=DURATION,
                                               help="Outbox behind this long counts as stuck.")] = Duration("30s"),
    stalled_after: Annotated[float, typer.Option(parser=duration, metavar=DURATION,
                                                 help="No event for this long counts as stalled.")] = Duration("10m"),
    dsn: DsnOpt = None, json_: JsonOpt = False,
) -> None:
    """LAST RESORT: mark a confirmed-stuck started run cancelled and remove its outbox row (runbook SQL, verbatim).

    Refuses (exit 2) without --confirm, for a run that is not started, or one that is not stuck.
    """
    result = cancel_run(resolve_dsn(dsn), run_id, confirm=confirm, stuck_after_s=stuck_after,
                        stalled_after_s=stalled_after)
    if json_:
        emit_json(result.to_dict())
        return
    stdout.print(f"cancelled {run_id} ({result.reason}); its run_outbox row is removed, publishedAt untouched",
                 highlight=False)
