"""`harness load`: Locust users against the stack under faults, the runbook's lag classes as a release
gate (harness/load/). Exit 0 when p95 and p99 of the live lag stay in the gated class and every
invariant held, 1 when lag left the class or an invariant broke, 2 when inconclusive (the generator's
CPU warning, too few live frames, the stack could not start) or on a usage error.

`--worker --master-host H` only runs Locust workers for a `harness load --master` elsewhere."""
from __future__ import annotations

import shlex
import subprocess
import sys
from datetime import datetime
from enum import Enum
from pathlib import Path
from typing import Annotated, Optional

import typer

from harness.commands.options import DURATION, Duration, JsonOpt, TargetOpt, duration
from harness.commands.output import stderr, stdout
from harness.commands.runbook_common import emit_json
from harness.errors import ConfigError

__all__ = ["register"]

REPORTS = Path(__file__).resolve().parents[2] / "reports"


class Gate(str, Enum):
    normal = "normal"
    warning = "warning"


def register(app: typer.Typer) -> None:
    app.command("load")(load_cmd)


def load_cmd(
    users: Annotated[int, typer.Option("--users", "-u", min=1, help="Locust users (streams and writers, 4:1:1)")] = 12,
    spawn_rate: Annotated[float, typer.Option("--spawn-rate", "-r", min=0.1, help="users started per second")] = 12.0,
    duration_s: Annotated[float, typer.Option("--duration", "-t", parser=duration, metavar=DURATION,
                                              help="how long the load runs (30s, 5m)")] = Duration("60s"),
    fault: Annotated[Optional[list[str]], typer.Option(
        "--fault", help="a fault on the load's clock, repeatable: pg_outbox:latency=300@20s-40s,"
                        " sse:reset_peer@every10s, kill:outbox-worker-0@30s (harness/load/fault_specs.py)")] = None,
    processes: Annotated[int, typer.Option("--processes", min=1, help="Locust worker processes on this machine")] = 1,
    target: TargetOpt = None,
    gate: Annotated[Gate, typer.Option(help="the class p95 and p99 of the live lag must stay in")] = Gate.normal,
    running: Annotated[bool, typer.Option("--running", help="load the stack of `harness up --detach` (no --fault)")]
    = False,
    steps: Annotated[int, typer.Option(min=1, help="events of each run")] = 50,
    interval_ms: Annotated[int, typer.Option(min=0, help="between a run's events")] = 100,
    min_samples: Annotated[int, typer.Option(min=1, help="fewer live frames: inconclusive")] = 100,
    cpu_warning_percent: Annotated[float, typer.Option(
        min=1, max=100, help="a generator process above this CPU makes the result inconclusive (Locust's 90;"
                             " lower only to see that path)")] = 90.0,
    master: Annotated[bool, typer.Option("--master", help="wait for --expect-workers Locust workers"
                                                          " (`harness load --worker` on other machines)")] = False,
    expect_workers: Annotated[int, typer.Option(min=1, help="with --master")] = 1,
    worker: Annotated[bool, typer.Option("--worker", help="only Locust workers for the --master at --master-host")]
    = False,
    master_host: Annotated[str, typer.Option(help="with --worker")] = "127.0.0.1",
    master_port: Annotated[int, typer.Option(help="Locust's master port")] = 5557,
    out: Annotated[Path, typer.Option("--out", metavar="DIR", file_okay=False,
                                      help="the report goes to DIR/<time>/load/")] = REPORTS,
    json_: JsonOpt = False,
) -> None:
    """Load the stack with Locust, faults on the load's clock, and gate on the runbook's lag classes."""
    from harness.load.fault_specs import parse_fault_specs
    from harness.load.locust_cmd import LoadPlan, worker_command
    from harness.load.run import LoadRequest, run_load
    from harness.stack import install_signal_handlers

    if worker:
        raise typer.Exit(subprocess.call(worker_command(master_host, master_port, processes)))
    if duration_s <= 0:
        raise ConfigError(f"--duration {duration_s}: use e.g. 30s or 5m")
    entries = tuple(parse_fault_specs(fault or [], duration_s))  # a bad spec: one line, before anything starts
    plan = LoadPlan(users=users, spawn_rate=spawn_rate, duration_s=duration_s, processes=processes, master=master,
                    expect_workers=expect_workers, gate=gate.value, min_samples=min_samples,
                    cpu_warning_percent=cpu_warning_percent, steps=steps, interval_ms=interval_ms)
    install_signal_handlers()  # SIGTERM tears Locust and the stack down like Ctrl-C does
    folder = out / datetime.now().strftime("%Y%m%d-%H%M%S") / "load"
    command = "harness " + shlex.join(sys.argv[1:])
    say = _say_to_stderr if json_ else _say  # with --json, stdout is the summary only
    summary = run_load(LoadRequest(plan, entries, folder, command, running, target), say=say)
    for row in summary["phases"]:
        say(f"{row['phase']:>8} {row['start_s']:>6.1f}-{row['end_s']:<6.1f}s live frames {row['live_frames']:>6}"
             f"  p50 {row['p50']} p95 {row['p95']} p99 {row['p99']} ms  class {row['p99_class']}")
    reasons = "; ".join(summary["reasons"])
    say(f"{summary['verdict'].upper()}{': ' + reasons if reasons else ''}; report: {folder / 'index.html'}")
    if json_:
        emit_json(summary)
    raise typer.Exit(summary["exit_code"])


def _say(line: str) -> None:
    stdout.print(line, highlight=False, markup=False, soft_wrap=True)


def _say_to_stderr(line: str) -> None:
    stderr.print(line, highlight=False, markup=False, soft_wrap=True)
