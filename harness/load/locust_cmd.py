"""The Locust command lines of `harness load`: headless (alone, `--processes K` forked here, or a
`--master` waiting for workers) and a `--worker` joining a master on another machine. Our options go
as the locustfile's own arguments, which a master passes on to its workers."""
from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

__all__ = ["LOCUSTFILE", "LoadPlan", "Endpoints", "locust_command", "worker_command"]

LOCUSTFILE = Path(__file__).resolve().parents[2] / "scenarios" / "locustfile.py"


@dataclass(frozen=True)
class LoadPlan:
    users: int
    spawn_rate: float
    duration_s: float
    processes: int = 1
    master: bool = False  # wait for `expect_workers` workers (`harness load --worker`) instead of forking
    expect_workers: int = 1
    gate: str = "normal"
    min_samples: int = 100
    cpu_warning_percent: float = 90.0
    steps: int = 50  # a run's events
    interval_ms: int = 100  # between a run's events
    readers_per_run: int = 2


@dataclass(frozen=True)
class Endpoints:
    stream_url: str  # where stream users connect (through the sse link)
    write_url: str  # where writers send requests (straight to the API: a fault on sse cuts streams only)
    stream_path: str
    read_timeout_s: float  # 2-3 x the heartbeat


def _python_locust() -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE)]


def locust_command(plan: LoadPlan, ends: Endpoints, out: Path) -> list[str]:
    """The headless run writing Locust's CSV, HTML, JSON and log into `out`, the frames into
    `out/record/` and the lag classes into `out/lag.json` (Locust adds `.json` to `--json-file`)."""
    cmd = [*_python_locust(), "--headless", "--users", str(plan.users), "--spawn-rate", f"{plan.spawn_rate:g}",
           "--run-time", f"{plan.duration_s:g}s", "--host", ends.stream_url, "--stop-timeout", "0",
           "--csv", str(out / "locust"), "--html", str(out / "locust.html"), "--json-file", str(out / "locust"),
           "--logfile", str(out / "locust.log"), "--only-summary",
           "--write-url", ends.write_url, "--stream-path", ends.stream_path,
           "--read-timeout", f"{ends.read_timeout_s:g}", "--steps", str(plan.steps),
           "--interval-ms", str(plan.interval_ms), "--readers-per-run", str(plan.readers_per_run),
           "--record-dir", str(out / "record"), "--lag-file", str(out / "lag.json"), "--gate", plan.gate,
           "--min-samples", str(plan.min_samples), "--cpu-warning-percent", f"{plan.cpu_warning_percent:g}"]
    if plan.master:
        return [*cmd, "--master", "--expect-workers", str(plan.expect_workers)]
    return [*cmd, "--processes", str(plan.processes)] if plan.processes > 1 else cmd


def worker_command(master_host: str, master_port: int, processes: int) -> list[str]:
    """A worker (or `processes` of them) for the master at `master_host`; it takes its options from the master."""
    cmd = [*_python_locust(), "--worker", "--master-host", master_host, "--master-port", str(master_port)]
    return [*cmd, "--processes", str(processes)] if processes > 1 else cmd
