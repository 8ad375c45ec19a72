"""`harness up`, `harness down`, `harness status`: own the local stack from a terminal."""

from __future__ import annotations

import json
import os
import shlex
import sys
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table
from rich.text import Text

from harness.commands.options import DURATION, Duration, JsonOpt, LogsDirOpt, StackDsnOpt, TargetOpt, duration
from harness.commands.output import say, say_started, stdout
from harness.commands.runbook_common import emit_json
from harness.errors import ConfigError
from harness.stack.config import StackConfig
from harness.target import load_profile, reference_profile
from harness.stack.info import StackInfo
from harness.stack.service import Intervals
from harness.stack.supervisor import StateFiles, detach, down, running_info, serve

__all__ = ["register"]


class NginxChoice(str, Enum):
    off = "off"
    on = "on"
    buffered = "buffered"


class InfraChoice(str, Enum):
    local = "local"
    docker = "docker"


def register(app: typer.Typer) -> None:
    app.command("up")(up)
    app.command("down")(down_cmd)
    app.command("status")(status)


def up(
    detach_: Annotated[bool, typer.Option("--detach", "-d", help="Return once up; `harness down` stops it.")] = False,
    dsn: StackDsnOpt = None,
    toxiproxy_url: Annotated[Optional[str], typer.Option(envvar="TOXIPROXY_URL",
                                                         help="Use this toxiproxy server instead of starting one.")] = None,
    infra: Annotated[InfraChoice, typer.Option(
        envvar="HARNESS_INFRA", help="How our own PostgreSQL and toxiproxy run: local processes or containers"
                                     " (testcontainers; images from scripts/docker_setup.sh).")] = InfraChoice.local,
    nginx: Annotated[NginxChoice, typer.Option(help="nginx in front of the API: on (SSE-ready), buffered"
                                                    " (nginx defaults) or off.")] = NginxChoice.off,
    api_replicas: Annotated[int, typer.Option(min=1)] = 1,
    outbox_workers: Annotated[int, typer.Option(min=0)] = 1,
    queue_workers: Annotated[int, typer.Option(min=0)] = 1,
    fast: Annotated[bool, typer.Option(help="Test intervals (1 s heartbeat) instead of the runbook's.")] = False,
    heartbeat_ms: Annotated[Optional[int], typer.Option(min=1)] = None,
    outbox_poll_ms: Annotated[Optional[int], typer.Option(min=1)] = None,
    queue_poll_ms: Annotated[Optional[int], typer.Option(min=1)] = None,
    sse_retry_ms: Annotated[Optional[int], typer.Option(min=0)] = None,
    failpoints: Annotated[str, typer.Option(help="FAILPOINTS for every process: name=action;...")] = "",
    env: Annotated[Optional[list[str]], typer.Option("--env", "-e", help="KEY=VALUE for every service process.")] = None,
    target: TargetOpt = None,
    service_command: Annotated[Optional[str], typer.Option(envvar="HARNESS_SERVICE_COMMAND",
                                                           help="The service's command (default: python -m reference_impl).")] = None,
    service_dir: Annotated[Optional[Path], typer.Option(envvar="HARNESS_SERVICE_DIR", exists=True, file_okay=False,
                                                        help="Source directory of the service (a patched copy).")] = None,
    no_service: Annotated[bool, typer.Option("--no-service", help="Only PostgreSQL, toxiproxy (and nginx).")] = False,
    logs: LogsDirOpt = None,
) -> None:
    """Start the local stack, print its endpoints and write them to .harness/stack.json."""
    files = StateFiles.default()
    if detach_:
        say(Text(f"starting the stack in the background (its log: {files.supervisor_log})"))
        info = detach(_args_without_detach(sys.argv[1:]), files)
        _print_info(info, files)
        stdout.print(f"running in the background (pid {info.owner_pid}); stop it with [bold]harness down[/]")
        return
    config = _build_config(locals(), files)
    serve(config, files, lambda info: _print_info(info, files) if not os.environ.get("HARNESS_DETACHED")
          else None, on_started=say_started)
    stdout.print("stack stopped")


def _args_without_detach(argv: list[str]) -> list[str]:
    """This invocation's options for the background `harness up` (the same ones, minus --detach)."""
    args = list(argv)
    if "up" in args:
        args.remove("up")  # the first occurrence is the command itself
    return [a for a in args if a not in ("--detach", "-d")]


def _build_config(opts: dict[str, Any], files: StateFiles) -> StackConfig:
    intervals = Intervals.fast() if opts["fast"] else Intervals()
    overrides = {k: opts[k] for k in ("heartbeat_ms", "outbox_poll_ms", "queue_poll_ms", "sse_retry_ms")
                 if opts[k] is not None}
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    config = StackConfig.from_env(env={}).with_overrides(
        postgres_dsn=opts["dsn"], toxiproxy_url=opts["toxiproxy_url"], nginx=opts["nginx"].value,
        infra=opts["infra"].value,
        logs_dir=opts["logs"] or files.root / "logs" / stamp)
    if opts["no_service"]:
        return config.with_overrides(service=None)
    service_dir = opts["service_dir"]
    return config.with_overrides(
        api_replicas=opts["api_replicas"], outbox_workers=opts["outbox_workers"],
        queue_workers=opts["queue_workers"], failpoints=opts["failpoints"], intervals=intervals,
        extra_env=_parse_env(opts["env"] or []), command=tuple(shlex.split(opts["service_command"] or "")),
        source_dir=Path(service_dir).resolve() if service_dir else None,
        profile=load_profile(opts["target"]) if opts["target"] else reference_profile(), **overrides)


def _parse_env(pairs: list[str]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"--env expects KEY=VALUE, got '{pair}'")
        env[key] = value
    return env


def _print_info(info: StackInfo, files: StateFiles) -> None:
    table = Table(title="harness stack", show_header=True, header_style="bold")
    table.add_column("endpoint")
    table.add_column("value", overflow="fold")
    rows = [("api_url (via sse proxy)", info.api_url), ("api_direct_url", info.api_direct_url),
            ("dsn (direct)", info.dsn), ("toxiproxy_url", info.toxiproxy_url), ("logs_dir", info.logs_dir)]
    rows += [("nginx_url", info.nginx_url)] if info.nginx_url else []
    rows += [(f"process {p.name}", f"pid {p.pid}  {p.url or ''}") for p in info.processes]
    for name, value in rows:
        table.add_row(name, str(value))
    stdout.print(table)
    stdout.print(f"endpoints written to {files.stack_json}")


def down_cmd(
    timeout: Annotated[float, typer.Option(parser=duration, metavar=DURATION,
                                           help="How long to wait for an orderly teardown before SIGKILL.")]
    = Duration("30s"),
) -> None:
    """Stop the stack started by `harness up` and reap leftovers of a crashed harness."""
    for line in down(StateFiles.default(), timeout):
        stdout.print(line)


def status(json_: JsonOpt = False) -> None:
    """Show the running stack's endpoints (`--json`: the stack.json of `harness up`).

    Exit 0: a stack is up; 1: none is.
    """
    files = StateFiles.default()
    info = running_info(files, "`harness up`")
    if json_:
        emit_json(json.loads(info.to_json()))
    else:
        _print_info(info, files)
