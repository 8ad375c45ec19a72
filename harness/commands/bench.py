"""`harness bench` (`make bench`): end-to-end lag and throughput on a stack of its own.

Starts its own local stack (runbook-default intervals), runs the benchmarks with their load in
separate processes, prints the figures against the issue's targets and, with --write, writes them
(with the machine and this exact command) as Markdown. Everything started is stopped on the way out,
also on Ctrl-C.
"""

from __future__ import annotations

import dataclasses
import shlex
import sys
from datetime import datetime, timezone
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from harness.commands.options import DURATION, Duration, JsonOpt, duration
from harness.commands.output import stderr, stdout
from harness.commands.runbook_common import emit_json

if TYPE_CHECKING:
    from harness.bench.generator import GeneratorParams

__all__ = ["register"]


class Only(str, Enum):
    lag = "lag"
    throughput = "throughput"
    generator = "generator"  # the load generator's own ceiling; runs only when asked (no stack)


def register(app: typer.Typer) -> None:
    app.command("bench")(bench)


def bench(
    write: Annotated[Optional[Path], typer.Option("--write", help="Write the figures as Markdown to this file"
                                                  " (e.g. docs/BENCHMARKS.md; its notes section is kept).")] = None,
    measured: Annotated[float, typer.Option("--duration", parser=duration, metavar=DURATION,
                                            help="Measured time per benchmark, after the warm-up (1s-10m).")]
    = Duration("20s"),
    warmup: Annotated[float, typer.Option("--warmup", parser=duration, metavar=DURATION,
                                          help="Warm-up, not measured (0s-1m).")] = Duration("3s"),
    streams: Annotated[int, typer.Option("--streams", min=1, max=2000,
                                         help="Open SSE streams (stream lag, generator).")] = 100,
    runs: Annotated[int, typer.Option("--runs", min=1, max=1000, help="Runs the streams are spread over.")] = 10,
    rate: Annotated[float, typer.Option("--rate", min=1.0, max=100_000.0,
                                        help="Events/s appended in all (stream lag).")] = 500.0,
    only: Annotated[Optional[Only], typer.Option("--only", help="Run one benchmark only; `generator` (Locust's"
                                                 " own ceiling against the replay server) runs only when named.")] = None,
    frames: Annotated[float, typer.Option("--frames", min=1.0, max=1_000_000.0,
                                          help="Frames/s offered in all (generator).")] = 20_000.0,
    processes: Annotated[int, typer.Option("--processes", min=1, max=16,
                                           help="Locust processes (generator).")] = 1,
    locustfile: Annotated[Optional[Path], typer.Option("--locustfile", help="The locustfile to measure (generator;"
                                                       " default: harness load's scenarios/locustfile.py).")] = None,
    api_replicas: Annotated[int, typer.Option(min=1, max=8)] = 1,
    outbox_workers: Annotated[int, typer.Option(min=1, max=8)] = 1,
    db_via_toxiproxy: Annotated[bool, typer.Option(
        "--db-via-toxiproxy", help="Route the service's DB connections through toxiproxy as the chaos suites"
                                   " do (default: directly).")] = False,
    json_: JsonOpt = False,
) -> None:
    """Measure end-to-end SSE lag (p50/p95/p99) and sustained events/s against the targets.

    Exit 0: both benchmarks ran (the figures are reported, not judged); 1: one could not run; 2: bad input.
    `--only generator` measures the load generator instead (Locust against a replay-only server, no stack).
    """
    from harness.bench.common import BenchSettings, bench_stack
    from harness.bench.generator import GeneratorParams
    from harness.bench.report import BenchReport, machine_info, rich_table, write as write_report
    from harness.bench.stream_lag import LagParams, run_stream_lag
    from harness.bench.throughput import ThroughputParams, run_throughput
    from harness.errors import ConfigError, HarnessError
    from harness.load.locust_cmd import LOCUSTFILE
    from harness.stack import install_signal_handlers

    if not 1.0 <= measured <= 600.0 or not 0.0 <= warmup <= 60.0:
        raise typer.BadParameter("--duration is 1s-10m, --warmup 0s-1m")
    install_signal_handlers()  # SIGTERM tears the stack down like Ctrl-C does
    if only is Only.generator:
        if write is not None:
            raise ConfigError("--write takes the lag and throughput figures; the generator's are printed only")
        _generator(GeneratorParams(locustfile or LOCUSTFILE, frames, streams, measured, warmup, processes), json_)
        return
    settings = BenchSettings(api_replicas=api_replicas, outbox_workers=outbox_workers,
                             direct_db=not db_via_toxiproxy)
    report = BenchReport(machine=machine_info(), date=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
                         command=_command_line(), stack=settings.describe())

    def say(text: str) -> None:
        stderr.print(f"[dim]{text}[/]", highlight=False)

    say("starting the bench's own stack")
    with bench_stack(settings) as stack:
        if only in (None, Only.lag):
            try:
                report.lag = run_stream_lag(stack, LagParams(duration_s=measured, warmup_s=warmup, streams=streams,
                                                             runs=min(runs, streams), rate=rate), say)
            except HarnessError as exc:
                report.failures.append(f"stream lag could not run: {exc}")
        if only in (None, Only.throughput):
            try:
                report.throughput = run_throughput(stack, ThroughputParams(duration_s=measured, warmup_s=warmup), say)
            except HarnessError as exc:
                report.failures.append(f"throughput could not run: {exc}")
    say("stack stopped")
    if write is not None:
        write_report(report, write)
        say(f"wrote {write}")
    if json_:
        emit_json(dataclasses.asdict(report))
    else:
        stdout.print(rich_table(report))
    for failure in report.failures:
        stderr.print(f"[bold red]{failure}[/]")
    if report.failures:
        raise typer.Exit(1)


def _generator(params: GeneratorParams, as_json: bool) -> None:
    """Print the generator's figures (a HarnessError when it could not run: one line, non-zero exit)."""
    from rich.table import Table

    from harness.bench.generator import run_generator

    result = run_generator(params, lambda text: stderr.print(f"[dim]{text}[/]", highlight=False))
    if as_json:
        emit_json(dataclasses.asdict(result) | {"saturated": result.saturated, "offered_per_s": result.offered_per_s,
                                                "cpu_us_per_frame": result.cpu_us_per_frame})
        return
    table = Table(title=f"generator ceiling ({result.plan.streams} streams, {params.frames_per_s:g} frames/s"
                        f" offered, {result.window_s:.0f} s window)")
    table.add_column("figure")
    table.add_column("measured", justify="right")
    kept = "no: the generator fell behind" if result.saturated else "yes"
    kept += f" (offered to the open streams: {result.offered_per_s:,.0f}/s)"
    lag = result.lag_ms
    rows = [("frames/s parsed (Locust's requests)", f"{result.parsed_per_s:,.0f}"),
            ("frames/s written by the replay server", f"{result.written_per_s:,.0f}"),
            ("kept up with the offered rate (>= 95 %)", kept),
            *((f"CPU of {name} (% of one core)", f"{pct:.1f}") for name, pct in result.locust_cpu.items()),
            ("Locust CPU per frame (µs)", f"{result.cpu_us_per_frame:.1f}"),
            ("live lag p50 / p95 / p99 / max (Locust, whole run, ms)",
             " / ".join(f"{lag[k]:g}" for k in ("p50", "p95", "p99", "max") if k in lag) or "–"),
            ("replay server CPU (% of one core)", f"{result.server_cpu_percent:.1f}"),
            ("machine busy (% of all cores)", f"{result.machine_busy_percent:.1f}"),
            ("streams open at the end", f"{result.streams_open} / {result.plan.streams}")]
    for name, value in rows:
        table.add_row(name, value)
    stdout.print(table)


def _command_line() -> str:
    """This invocation as one would type it: `harness bench ...`."""
    args = sys.argv[1:]
    if args and args[0] == "bench":
        args = args[1:]
    return shlex.join(["harness", "bench", *args])
