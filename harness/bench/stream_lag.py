"""Stream lag: N open SSE streams while a paced generator appends R events/s in all.

Lag per frame = the consumer's wall clock when it has parsed the frame - the event's `ts` (set by
PostgreSQL when the append's transaction began), so it covers append commit, outbox wake-up and
publish, LISTEN fan-out to the API, framing, the socket and the client. Streams are spread evenly
over the runs (100 streams / 10 runs = 10 per run), and over several consumer processes; the
generator is one more process. Events whose ts falls in the warm-up are not sampled.
"""

from __future__ import annotations

import math
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harness.bench.common import BenchError, BenchStack, create_runs, merge_counts
from harness.bench.cpu import CpuMeter
from harness.bench.loadgen import AppendJob, ConsumerJob, LoadProcesses, read_samples
from harness.bench.stats import LatencySummary, summarize

# A spawned interpreter needs over 1 s to start and connect on a machine busy with other work.
GENERATOR_LEAD_S = 4.0

__all__ = ["LagParams", "LagResult", "run_stream_lag"]


@dataclass(frozen=True)
class LagParams:
    duration_s: float = 20.0  # the measured window, after the warm-up
    warmup_s: float = 3.0
    streams: int = 100
    runs: int = 10
    rate: float = 500.0  # events/s appended in all
    consumer_procs: int = 4


@dataclass
class LagResult:
    params: LagParams
    lag_ms: LatencySummary
    append_ms: LatencySummary  # the generator's request latency (POST .../events)
    events_appended: int  # in the window
    event_rate: float  # achieved events/s in the window
    frames: int  # frames received with ts in the window, all streams
    frames_per_s: float
    expected_frames: int  # events in the window x streams of their run
    streams_open: int
    late_sends: int  # generator sends that were more than 5 ms behind schedule
    errors: list[str] = field(default_factory=list)
    cpu: dict[str, Any] = field(default_factory=dict)

    @property
    def delivered_ratio(self) -> float:
        return self.frames / self.expected_frames if self.expected_frames else math.nan


def run_stream_lag(stack: BenchStack, params: LagParams, say: Callable[[str], None] = lambda _: None) -> LagResult:
    if params.streams < params.runs or params.runs < 1:
        raise BenchError(f"need at least one stream per run, got {params.streams} streams for {params.runs} runs")
    urls = tuple(stack.info.api_direct_urls)
    run_ids = create_runs(urls[0], params.runs)
    with tempfile.TemporaryDirectory(prefix="bench-lag-", ignore_cleanup_errors=True) as out_dir:
        return _measure(stack, params, say, run_ids, Path(out_dir))


def _measure(stack: BenchStack, params: LagParams, say: Callable[[str], None], run_ids: list[str],
             out_dir: Path) -> LagResult:
    urls = tuple(stack.info.api_direct_urls)
    paths = [f"/api/agents/runs/{run_ids[i % params.runs]}/stream" for i in range(params.streams)]
    procs_n = max(1, min(params.consumer_procs, params.streams))
    total_s = params.warmup_s + params.duration_s
    with LoadProcesses(out_dir) as load:
        hard_stop = time.time() + 30 + total_s + 10  # bounds the consumers if the parent never signals
        names = []
        for p in range(procs_n):
            name = f"consumer-{p}"
            load.start(ConsumerJob(name, urls, tuple(paths[p::procs_n]), hard_stop, str(out_dir / name)))
            names.append(name)
        say(f"stream lag: opening {params.streams} streams on {params.runs} runs in {procs_n} consumer processes")
        problems = load.wait_ready(names, timeout=30)
        if problems:
            raise BenchError("SSE consumers could not open their streams: " + "; ".join(problems))
        gen_start = time.time() + GENERATOR_LEAD_S
        window = (gen_start + params.warmup_s, gen_start + total_s)
        load.start(AppendJob("generator", urls, tuple(run_ids), params.rate, gen_start, window[1], window,
                             str(out_dir / "generator")))
        problems = load.wait_ready(["generator"], timeout=max(0.5, gen_start - time.time()))
        if problems:
            raise BenchError("the generator could not connect: " + "; ".join(problems))
        meter = CpuMeter(stack.cpu_groups(),
                         {f"bench {n}": pid for n, pid in load.pids().items()} | {"bench harness": os.getpid()})
        say(f"stream lag: {params.rate:.0f} events/s, {params.warmup_s:.0f} s warm-up + {params.duration_s:.0f} s measured")
        _sleep_until(window[0])
        meter.start()
        _sleep_until(window[1])
        meter.stop()
        gen_result = load.collect(["generator"])[0]
        time.sleep(1.0)  # the window's last events are still on their way
        load.signal_stop()
        consumers = load.collect(names)
    errors = [f"{r.get('name')}: {r['error']}" for r in [gen_result, *consumers] if r.get("error")]
    lags: list[float] = []
    for name in names:
        stamps, lag = read_samples(str(out_dir / name))
        lags += [x for ts, x in zip(stamps, lag) if window[0] <= ts < window[1]]
    appended = int(gen_result.get("ok_in_window", 0))
    duration = window[1] - window[0]
    if gen_result.get("errors"):
        errors.append(f"generator: {gen_result['errors']} failed appends ({gen_result.get('statuses')})")
    ended = merge_counts(consumers, "ended") + merge_counts(consumers, "errors")
    if ended:
        errors.append(f"{ended} streams ended or failed during the run")
    return LagResult(
        params=params, lag_ms=summarize(lags), append_ms=summarize(gen_result.get("latencies_ms", [])),
        events_appended=appended, event_rate=appended / duration, frames=len(lags),
        frames_per_s=len(lags) / duration, expected_frames=round(appended * params.streams / params.runs),
        streams_open=merge_counts(consumers, "streams_open"), late_sends=int(gen_result.get("late", 0)),
        errors=errors, cpu=meter.to_dict())


def _sleep_until(moment: float) -> None:
    while (left := moment - time.time()) > 0:
        time.sleep(min(left, 0.5))
