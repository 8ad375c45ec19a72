"""The load generator's own ceiling: frames/s that Locust's SSE users parse against a server that only replays.

`harness load` judges lag measured by Locust; a Locust process that is short of CPU adds lag of its own.
This runs the project's locustfile (its `ScriptedRuns` writers offer runs, its `Streams` users follow
them) against tools/replay_server, which has no database and writes far faster than any Python client
reads, at an offered rate of frames/s, and measures over a window after the warm-up: the frames the
server wrote (`GET /stats`), the CPU of every Locust process and of the server, and Locust's own
percentiles of the frames' lag (over the whole run: its CSV has no window).

The locustfile runs as it does under `harness load` (a subprocess: `import locust` monkey-patches with
gevent); it imports the harness of its own checkout (PYTHONPATH), so a locustfile of another worktree
can be measured from this one.
"""

from __future__ import annotations

import csv
import math
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from harness.bench.cpu import CpuMeter, child_pids
from harness.bench.replay_server import ReplayServer, ReplaySettings, replay_server
from harness.errors import ConfigError, HarnessError
from harness.stack.janitor import get_janitor
from harness.stack.processes import ProcessSpec

__all__ = ["GeneratorParams", "GeneratorResult", "locust_argv", "run_generator", "stream_plan"]

READERS_PER_RUN = 4  # with the locustfile's weights (ScriptedRuns 1, Streams 4) every stream has a run
SATURATED_SHARE = 0.95  # below this share of the offered frames, the generator did not keep up
EXIT_GRACE_S = 30.0
OPEN_TIMEOUT_S = 30.0  # for every stream to be open, after the warm-up
STABLE_S = 3.0  # no more streams opened for this long: the rest will not open


class GeneratorError(HarnessError):
    """The generator benchmark could not run (no locustfile, Locust would not start, no frames)."""


@dataclass(frozen=True)
class GeneratorParams:
    locustfile: Path
    frames_per_s: float  # offered, all streams together
    streams: int
    duration_s: float
    warmup_s: float
    processes: int = 1  # Locust processes (`--processes`); 1: one process runs every user


@dataclass(frozen=True)
class StreamPlan:
    """How the offered rate maps onto the locustfile's users and the replay server's runs."""

    users: int  # Locust users: writers + streams
    streams: int
    per_run_rate: float  # events/s of each run, so frames/s = streams * per_run_rate
    events: int  # events per run: a run outlasts the measurement, so no stream changes runs in it
    interval_ms: int  # the writers' pace: a writer creates its next run once this one's events have had their time


def stream_plan(params: GeneratorParams) -> StreamPlan:
    streams = READERS_PER_RUN * math.ceil(params.streams / READERS_PER_RUN)
    rate = params.frames_per_s / streams
    run_s = params.warmup_s + params.duration_s + EXIT_GRACE_S
    interval_ms = max(1, round(1000 / rate))
    return StreamPlan(users=streams + streams // READERS_PER_RUN, streams=streams, per_run_rate=rate,
                      events=math.ceil(rate * run_s), interval_ms=interval_ms)


def locust_argv(params: GeneratorParams, plan: StreamPlan, url: str, out: Path) -> list[str]:
    run_time = params.warmup_s + params.duration_s + OPEN_TIMEOUT_S + EXIT_GRACE_S  # a bound: stopped after the window
    steps = math.ceil((params.warmup_s + params.duration_s + EXIT_GRACE_S) * 1000 / plan.interval_ms)
    argv = [sys.executable, "-m", "locust", "-f", str(params.locustfile), "--headless",
            "--users", str(plan.users), "--spawn-rate", str(plan.users), "--run-time", f"{run_time:g}s",
            "--host", url, "--stop-timeout", "0", "--only-summary", "--csv", str(out / "locust"), "--csv-full-history",
            "--logfile", str(out / "locust.log"), "--steps", str(steps), "--interval-ms", str(plan.interval_ms),
            "--readers-per-run", str(READERS_PER_RUN)]
    if params.processes > 1:
        argv += ["--processes", str(params.processes)]
    return [*argv, "ScriptedRuns", "Streams"]


@dataclass
class GeneratorResult:
    params: GeneratorParams
    plan: StreamPlan
    window_s: float = 0.0
    written_per_s: float = 0.0  # by the replay server over the window (socket buffers hold what is not read yet)
    parsed_per_s: float = 0.0  # Locust's requests (one per frame, plus a few connects) over the window
    locust_cpu: dict[str, float] = field(default_factory=dict)  # process -> % of one core
    server_cpu_percent: float = 0.0
    machine_busy_percent: float = 0.0
    lag_ms: dict[str, float] = field(default_factory=dict)  # Locust's "live lag" row: p50, p95, p99, max
    streams_open: int = 0

    @property
    def offered_per_s(self) -> float:
        """What the open streams were offered: with `--processes`, a worker's writers offer runs to its own
        stream users only, so a worker with fewer writers than its streams need leaves some unopened."""
        return self.streams_open * self.plan.per_run_rate

    @property
    def saturated(self) -> bool:
        return self.parsed_per_s < SATURATED_SHARE * self.offered_per_s

    @property
    def cpu_us_per_frame(self) -> float:
        total = sum(self.locust_cpu.values())
        return 1e4 * total / self.parsed_per_s if self.parsed_per_s else float("nan")


def run_generator(params: GeneratorParams, say: Callable[[str], None]) -> GeneratorResult:
    """Start the replay server, run Locust against it, measure the window; leaves nothing running."""
    if not params.locustfile.is_file():
        raise ConfigError(f"no locustfile at {params.locustfile} (`harness load`'s scenarios/locustfile.py)")
    plan = stream_plan(params)
    result = GeneratorResult(params, plan)
    settings = ReplaySettings(runs=0, rate=plan.per_run_rate, events=plan.events)
    with tempfile.TemporaryDirectory(prefix="harness-generator-") as tmp, replay_server(settings, Path(tmp)) as server:
        out = Path(tmp)
        env = {**os.environ, "PYTHONPATH": str(params.locustfile.resolve().parents[1])}
        spec = ProcessSpec(name="locust", argv=tuple(locust_argv(params, plan, server.url, out)),
                           log_path=out / "locust.out", env=env, cwd=out)
        say(f"generator: {plan.streams} streams at {plan.per_run_rate:g} frames/s each"
            f" ({params.frames_per_s:g} frames/s offered), {params.processes} Locust process(es)")
        locust = get_janitor().spawn(spec)
        try:
            _wait_for_streams(server, plan.streams, lambda: locust.running)
            if not locust.running:
                raise GeneratorError(f"Locust exited with {locust.returncode}:\n{locust.tail()}")
            time.sleep(params.warmup_s)
            assert locust.pid is not None
            meter = CpuMeter({"replay-server": server.pid}, _locust_processes(locust.pid))
            before = server.stats()
            window = (time.time(), time.time() + params.duration_s)
            meter.start()
            time.sleep(params.duration_s)
            meter.stop()
            after = server.stats()
        finally:
            locust.stop()  # SIGTERM: Locust writes its CSV files as it quits
        result.window_s = meter.wall_s
        result.written_per_s = (after["frames"] - before["frames"]) / meter.wall_s
        result.streams_open = min(before["streams_open"], after["streams_open"])
        result.machine_busy_percent = meter.machine_busy_percent
        shares = {s.name: s.percent for s in meter.shares}
        result.server_cpu_percent = shares.pop("replay-server", 0.0)
        result.locust_cpu = shares
        result.parsed_per_s = _requests_per_s(out / "locust_stats_history.csv", window)
        result.lag_ms = _live_lag(out / "locust_stats.csv")
    return result


def _wait_for_streams(server: ReplayServer, streams: int, running: Callable[[], bool]) -> None:
    """Until every stream is open, or as many as will open (none opened for STABLE_S), or Locust ended."""
    deadline = time.monotonic() + OPEN_TIMEOUT_S
    seen, since = -1, time.monotonic()
    while running() and time.monotonic() < deadline:
        now_open = server.stats()["streams_open"]
        if now_open >= streams or (now_open > 0 and now_open == seen and time.monotonic() - since >= STABLE_S):
            return
        if now_open != seen:
            seen, since = now_open, time.monotonic()
        time.sleep(0.2)
    if running():
        raise GeneratorError(f"{seen} of {streams} Locust streams open after {OPEN_TIMEOUT_S:g} s")


def _locust_processes(pid: int) -> dict[str, int]:
    """The Locust process and, with --processes, the workers it forked (it is then their master)."""
    workers = child_pids(pid)
    return {"locust master" if workers else "locust": pid,
            **{f"locust worker {i}": child for i, child in enumerate(workers)}}


def _requests_per_s(history_csv: Path, window: tuple[float, float]) -> float:
    """Locust's request rate between its first and last once-a-second total inside the window."""
    if not history_csv.is_file():
        raise GeneratorError(f"Locust wrote no {history_csv.name}")
    with history_csv.open(newline="") as f:
        totals = [(int(row["Timestamp"]), int(row["Total Request Count"])) for row in csv.DictReader(f)
                  if row.get("Name") == "Aggregated" and window[0] <= int(row["Timestamp"]) <= window[1]]
    if len(totals) < 2 or totals[-1][0] == totals[0][0]:
        raise GeneratorError(f"too few rows of Locust's {history_csv.name} inside the window to count its frames")
    return (totals[-1][1] - totals[0][1]) / (totals[-1][0] - totals[0][0])


def _live_lag(stats_csv: Path) -> dict[str, float]:
    """Locust's percentiles of the `live lag` entry over the whole run (1 ms buckets under the locustfile)."""
    if not stats_csv.is_file():
        return {}
    with stats_csv.open(newline="") as f:
        for row in csv.DictReader(f):
            if row.get("Name") == "live lag":
                return {key: float(row[column]) for key, column in
                        (("p50", "50%"), ("p95", "95%"), ("p99", "99%"), ("max", "Max Response Time"))
                        if row.get(column) not in (None, "", "N/A")}
    return {}
