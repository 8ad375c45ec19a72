"""`harness fault ...`: act on the running stack of `harness up` through its owner (harness/control).

Each command prints what changed; the owner logs it to `<state>/fault_log.jsonl`. A fault given
`--for` heals itself on the owner's clock; `clear` (and `harness down`) ends every active one.
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from harness.commands.output import stdout
from harness.commands.options import DURATION, JsonOpt, duration, run_id as check_run_id
from harness.commands.runbook_common import emit_json
from harness.control.client import ask_owner
from harness.errors import ConfigError

__all__ = ["register"]

fault_app = typer.Typer(help="Faults on the running stack of `harness up` (through its owner).", no_args_is_help=True)
failpoint_app = typer.Typer(help="Failpoints inside a service process.", no_args_is_help=True)
db_app = typer.Typer(help="Database faults.", no_args_is_help=True)
fault_app.add_typer(failpoint_app, name="failpoint")
fault_app.add_typer(db_app, name="db")


def register(app: typer.Typer) -> None:
    app.add_typer(fault_app, name="fault")


class Direction(str, Enum):
    up = "up"
    down = "down"


class Role(str, Enum):
    api = "api"
    outbox = "outbox"
    queue = "queue"


class OnOff(str, Enum):
    on = "on"
    off = "off"


ForOpt = Annotated[Optional[float], typer.Option("--for", parser=duration, metavar=DURATION,
                                                help="Heal it after this long (30s, 2m); default: until ended.")]
LinkArg = Annotated[str, typer.Argument(help="A link of the stack: sse, pg_api, pg_outbox, pg_queue (pg on a target whose one process does every role).")]
ProcessArg = Annotated[str, typer.Argument(help="A process of the stack: api-0, outbox-worker-0, postgres, ...")]


def _do(action: str, /, **args: Any) -> None:
    for line in ask_owner(action, args)["lines"]:
        stdout.print(line, highlight=False, soft_wrap=True)  # one line each, for scripts too


@fault_app.command("list")
def list_cmd(json_: JsonOpt = False) -> None:
    """Links and their toxics, processes and their state, armed failpoints, active faults."""
    state = ask_owner("list")
    if json_:
        emit_json(state)
        return
    links = _table("link", "state", "toxics")
    for link in state["links"]:
        toxics = "; ".join(f"{t['name']} {' '.join(f'{k}={v}' for k, v in t['attributes'].items())}"
                           for t in link["toxics"])
        links.add_row(link["name"], "up" if link["enabled"] else "CUT", toxics or "-")
    procs = _table("process", "state", "pid")
    for proc in state["processes"]:
        procs.add_row(proc["name"], proc["state"], str(proc["pid"] or "-"))
    faults = _table("id", "fault", "target", "params", "left")
    for f in state["faults"]:
        left = "until ended" if f["remaining_s"] is None else f"{f['remaining_s']:g}s"
        faults.add_row(f["id"], f["fault"], f["target"], " ".join(f"{k}={v}" for k, v in f["params"].items()), left)
    for table in (links, procs, faults):
        stdout.print(table)
    armed = ", ".join(f"{fp['name']}={fp['action']} in {fp['process']}" for fp in state["failpoints"])
    stdout.print(f"armed failpoints: {armed or 'none'}", highlight=False)
    if state["nginx_buffering"] is not None:
        stdout.print(f"nginx buffering: {'on' if state['nginx_buffering'] else 'off'}", highlight=False)


def _table(*columns: str) -> Table:
    table = Table(show_header=True, header_style="bold", box=None)
    for column in columns:
        table.add_column(column)
    return table


@fault_app.command("add")
def add_cmd(link: LinkArg, toxic: Annotated[str, typer.Argument(help="latency, bandwidth, timeout, ...")],
            attrs: Annotated[Optional[list[str]], typer.Argument(help="attr=value, e.g. latency=500")] = None,
            direction: Annotated[Direction, typer.Option(help="down: towards the client; up: towards the server.")]
            = Direction.down, for_: ForOpt = None) -> None:
    """Add a toxic to a link: `harness fault add pg_outbox latency latency=500 --for 30s`."""
    _do("add", link=link, toxic=toxic, attrs=_pairs(attrs or []), direction=f"{direction.value}stream",
        for_s=for_)


def _pairs(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"toxic attributes are attr=value, got '{item}'")
        pairs[key] = value
    return pairs


@fault_app.command("remove")
def remove_cmd(link: LinkArg, name: Annotated[str, typer.Argument(help="The toxic's name (`harness fault list`).")]) -> None:
    """Remove a toxic added by `harness fault add`."""
    _do("remove", link=link, name=name)


@fault_app.command("clear")
def clear_cmd() -> None:
    """End every active fault."""
    _do("clear")


@fault_app.command("cut")
def cut_cmd(link: LinkArg, for_: ForOpt = None) -> None:
    """Take a link down: new connections refused, open ones closed."""
    _do("cut", link=link, for_s=for_)


@fault_app.command("restore")
def restore_cmd(link: LinkArg) -> None:
    """Bring a cut link back."""
    _do("restore", link=link)


@fault_app.command("kill")
def kill_cmd(process: ProcessArg, for_: ForOpt = None) -> None:
    """SIGKILL a process (its group); it stays down until `restart`, `clear` or --for."""
    _do("kill", process=process, for_s=for_)


@fault_app.command("pause")
def pause_cmd(process: ProcessArg, for_: ForOpt = None) -> None:
    """SIGSTOP a process: connections stay open, nothing answers."""
    _do("pause", process=process, for_s=for_)


@fault_app.command("resume")
def resume_cmd(process: ProcessArg) -> None:
    """SIGCONT a paused process."""
    _do("resume", process=process)


@fault_app.command("restart")
def restart_cmd(process: ProcessArg) -> None:
    """Start a killed process again, or restart a running one (SIGTERM, start, wait until ready)."""
    _do("restart", process=process)


@fault_app.command("start-replica")
def start_replica_cmd(role: Annotated[str, typer.Argument(help="outbox-worker or queue-worker.")]) -> None:
    """Start another worker of a role beside the running ones (`outbox-worker-1`); `down` stops it too."""
    _do("start_replica", role=role)


@failpoint_app.command("arm")
def failpoint_arm_cmd(process: ProcessArg, name: Annotated[str, typer.Argument(help="The failpoint's name.")],
                      action: Annotated[str, typer.Argument(help="crash, 1*crash, error, hang, sleep(200), ...")],
                      for_: ForOpt = None) -> None:
    """Arm a failpoint in one process."""
    _do("failpoint_arm", process=process, name=name, action=action, for_s=for_)


@failpoint_app.command("disarm")
def failpoint_disarm_cmd(process: ProcessArg, name: Annotated[str, typer.Argument(help="The failpoint's name.")]) -> None:
    """Disarm a failpoint in one process."""
    _do("failpoint_disarm", process=process, name=name)


@db_app.command("terminate-sessions")
def terminate_sessions_cmd(role: Annotated[Optional[Role], typer.Option(help="Only this role's sessions.")] = None) -> None:
    """pg_terminate_backend the service's sessions (every role's unless --role)."""
    _do("terminate_sessions", role=role.value if role else None)


@db_app.command("lock-outbox")
def lock_outbox_cmd(run_id: Annotated[str, typer.Argument(callback=check_run_id,
                                                          help="The run whose outbox row to lock.")],
                    for_: ForOpt = None) -> None:
    """Hold the run's run_outbox row locked (FOR UPDATE): that run's events wait, other runs go on."""
    _do("lock_outbox", run_id=run_id, for_s=for_)


@fault_app.command("buffering")
def buffering_cmd(mode: Annotated[OnOff, typer.Argument(help="on: nginx's defaults (the incident); off: SSE-ready.")],
                  for_: ForOpt = None) -> None:
    """Switch nginx's proxy buffering live (a stack started with `--nginx on` or `buffered`)."""
    _do("buffering", on=mode is OnOff.on, for_s=for_)
