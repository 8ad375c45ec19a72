"""The bench's load processes: SSE consumers and appenders, each a separate OS process.

Each process gets a frozen job, runs one asyncio loop (uvloop when installed) that is bounded by the
job's `stop_at` wall time, and writes its samples as JSON to `job.out`. The parent (`LoadProcesses`)
starts them with the `spawn` method, waits for their "ready" message, and on leaving (also on an
exception or Ctrl-C) terminates and then kills whatever is still alive.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing as mp
import os
import queue as queue_mod
import time
from array import array
from dataclasses import dataclass
from pathlib import Path
from collections.abc import Callable, Coroutine
from typing import Any, Union

from harness.bench.rawhttp import HttpConn, SSEStream, frame_ts_epoch

__all__ = ["AppendJob", "ConsumerJob", "LoadProcesses", "read_samples", "run_job"]

GRACE_S = 5.0  # a process past stop_at + this is terminated by the parent
EVENT_TYPE = "BenchTick"


@dataclass(frozen=True)
class ConsumerJob:
    """Open every stream; record each frame's event ts and its lag (client parse time - ts) until the
    parent's stop event or `stop_at`, whichever comes first. Samples go to `<out>.ts` / `<out>.lag`
    (native float64 arrays), the counts to `out`; the parent picks its window from the ts."""

    name: str
    base_urls: tuple[str, ...]  # stream i goes to base_urls[i % len]
    paths: tuple[str, ...]
    stop_at: float  # epoch seconds: the hard bound
    out: str
    open_timeout_s: float = 20.0


@dataclass(frozen=True)
class AppendJob:
    """One keep-alive connection per run; paced at `rate` events/s in all (open loop) or, when rate is
    None, each connection appends back to back (closed loop)."""

    name: str
    base_urls: tuple[str, ...]  # run i's connection goes to base_urls[i % len]
    run_ids: tuple[str, ...]
    rate: float | None
    start_at: float  # epoch seconds
    stop_at: float
    window: tuple[float, float]  # completions in [start, end) are counted as the measurement
    out: str
    payload_bytes: int = 16
    rate_offset: float = 0.0  # this process's share of the pacing phase, in seconds
    request_timeout_s: float = 10.0


Job = Union[ConsumerJob, AppendJob]


def run_job(job: Job, ready: Any, stop: Any) -> None:
    """Process entry point (spawn-picklable). `ready`: a queue for (name, status); `stop`: an Event."""
    try:
        import uvloop  # the service's own dependency (uvicorn[standard])

        runner: Callable[[Coroutine[Any, Any, dict[str, Any]]], dict[str, Any]] = uvloop.run
    except ImportError:  # pragma: no cover - uvloop ships with uvicorn[standard]
        runner = asyncio.run
    try:
        coro = _consume(job, ready, stop) if isinstance(job, ConsumerJob) else _append(job, ready)
        result = runner(coro)
    except KeyboardInterrupt:  # Ctrl-C reaches the whole foreground group; the parent cleans up
        return
    except BaseException as exc:  # report rather than die silently: the parent shows it
        result = {"error": f"{type(exc).__name__}: {exc}"}
        ready.put((job.name, result["error"]))
    result["pid"] = os.getpid()
    Path(job.out).write_text(json.dumps(result))


async def _consume(job: ConsumerJob, ready: Any, stop: Any) -> dict[str, Any]:
    cache: dict[bytes, float] = {}
    stamps, lags = array("d"), array("d")
    counts = {"frames": 0, "ended": 0, "errors": 0}
    opened = await asyncio.wait_for(
        asyncio.gather(*(SSEStream.open(job.base_urls[i % len(job.base_urls)], path)
                         for i, path in enumerate(job.paths)), return_exceptions=True),
        job.open_timeout_s)
    streams = [s for s in opened if isinstance(s, SSEStream)]
    failures = [repr(s) for s in opened if not isinstance(s, SSEStream)]
    ready.put((job.name, "ready" if not failures else f"{len(failures)} streams failed: {failures[0]}"))

    async def pump(stream: SSEStream) -> None:
        while True:
            try:
                frames = await stream.read()
            except (OSError, ValueError):
                counts["errors"] += 1
                return
            if frames is None:
                counts["ended"] += 1
                return
            now = time.time()
            for block in frames:
                ts = frame_ts_epoch(block, cache)
                if ts is None:
                    continue  # a heartbeat comment or retry frame
                counts["frames"] += 1
                stamps.append(ts)
                lags.append((now - ts) * 1000.0)

    tasks = [asyncio.create_task(pump(s)) for s in streams]
    while time.time() < job.stop_at and not stop.is_set() and not all(t.done() for t in tasks):
        await asyncio.sleep(0.1)
    for task in tasks:
        task.cancel()
    for stream in streams:
        stream.close()
    with open(job.out + ".ts", "wb") as f:
        stamps.tofile(f)
    with open(job.out + ".lag", "wb") as f:
        lags.tofile(f)
    return {"kind": "consumer", "name": job.name, "streams_open": len(streams), "open_failures": len(failures),
            **counts}


async def _append(job: AppendJob, ready: Any) -> dict[str, Any]:
    conns = [HttpConn(job.base_urls[i % len(job.base_urls)]) for i in range(len(job.run_ids))]
    await asyncio.gather(*(c.connect() for c in conns))
    ready.put((job.name, "ready"))
    pad = "x" * job.payload_bytes
    w0, w1 = job.window
    stats = {"ok": 0, "ok_in_window": 0, "late": 0, "errors": 0}
    statuses: dict[str, int] = {}  # answers by HTTP status
    latencies = array("d")
    n_runs = len(job.run_ids)
    first_done: list[float] = []
    last_done: list[float] = []

    async def loop(index: int, run_id: str, conn: HttpConn) -> None:
        path = f"/api/agents/runs/{run_id}/events"
        interval = n_runs / job.rate if job.rate else 0.0
        offset = job.rate_offset + (index / job.rate if job.rate else 0.0)
        k = 0
        while True:
            if job.rate:
                due = job.start_at + offset + k * interval
                if due >= job.stop_at:
                    return
                delay = due - time.time()
                if delay > 0:
                    await asyncio.sleep(delay)
                elif delay < -0.005:
                    stats["late"] += 1  # the previous answer came back after this one was due
            elif time.time() >= job.stop_at:
                return
            k += 1
            sent = time.time()
            try:
                status, _ = await asyncio.wait_for(
                    conn.post_json(path, {"type": EVENT_TYPE, "payload": {"k": k, "pad": pad}}),
                    job.request_timeout_s)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, TimeoutError, ValueError):
                stats["errors"] += 1
                await conn.close()
                await asyncio.sleep(0.05)
                continue
            done = time.time()
            key = str(status)
            statuses[key] = statuses.get(key, 0) + 1
            if status != 201:
                stats["errors"] += 1
                continue
            stats["ok"] += 1
            if w0 <= done < w1:
                stats["ok_in_window"] += 1
                latencies.append((done - sent) * 1000.0)
            if not first_done:
                first_done.append(done)
            last_done[:] = [done]

    delay = job.start_at - time.time()
    if delay > 0:
        await asyncio.sleep(delay)
    tasks = [asyncio.create_task(loop(i, r, c)) for i, (r, c) in enumerate(zip(job.run_ids, conns))]
    await asyncio.wait(tasks, timeout=max(0.0, job.stop_at - time.time() + job.request_timeout_s))
    for task in tasks:
        task.cancel()
    for conn in conns:
        await conn.close()
    return {"kind": "appender", "name": job.name, **stats, "statuses": statuses, "latencies_ms": [round(x, 3) for x in latencies],
            "first_done": first_done[0] if first_done else None, "last_done": last_done[0] if last_done else None}


class LoadProcesses:
    """Starts jobs in their own processes; collects their results; leaves nothing running."""

    def __init__(self, out_dir: Path) -> None:
        self._ctx = mp.get_context("spawn")  # a fresh interpreter: no inherited loop, sockets or handlers
        self._ready = self._ctx.Queue()
        self._stop = self._ctx.Event()
        self.out_dir = out_dir
        self.procs: dict[str, Any] = {}
        self.jobs: dict[str, Job] = {}

    def __enter__(self) -> LoadProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, job: Job) -> None:
        proc = self._ctx.Process(target=run_job, args=(job, self._ready, self._stop), name=f"bench-{job.name}", daemon=True)
        proc.start()
        self.procs[job.name] = proc
        self.jobs[job.name] = job

    def pids(self) -> dict[str, int]:
        return {name: p.pid for name, p in self.procs.items() if p.pid is not None}

    def wait_ready(self, names: list[str], timeout: float) -> list[str]:
        """Block until each named job reported; returns the problems they reported (empty: all ready)."""
        pending, problems = set(names), []
        deadline = time.monotonic() + timeout
        while pending:
            left = deadline - time.monotonic()
            if left <= 0:
                problems.append(f"not ready after {timeout:.0f} s: {sorted(pending)}")
                break
            try:
                name, status = self._ready.get(timeout=min(left, 0.5))
            except queue_mod.Empty:
                dead = [n for n in pending if not self.procs[n].is_alive()]
                if dead:
                    problems.append(f"exited before ready: {dead}")
                    pending -= set(dead)
                continue
            pending.discard(name)
            if status != "ready":
                problems.append(f"{name}: {status}")
        return problems

    def signal_stop(self) -> None:
        """Consumers finish (and write their samples) at their next check, within 0.1 s."""
        self._stop.set()

    def collect(self, names: list[str]) -> list[dict[str, Any]]:
        """Join the named jobs (bounded by their stop_at + grace) and read their results."""
        results = []
        for name in names:
            job, proc = self.jobs[name], self.procs[name]
            proc.join(max(0.1, job.stop_at + GRACE_S + getattr(job, "request_timeout_s", 0) - time.time()))
            if proc.is_alive():
                proc.terminate()
                proc.join(2)
            path = Path(job.out)
            results.append(json.loads(path.read_text()) if path.exists() else
                           {"name": name, "error": f"no result (exit code {proc.exitcode})"})
        return results

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.is_alive():
                proc.terminate()
        for proc in self.procs.values():
            proc.join(3)
            if proc.is_alive():
                proc.kill()
                proc.join(2)
        self._ready.close()
        self._ready.join_thread()


def read_samples(out: str) -> tuple[array[float], array[float]]:
    """A consumer's (event ts epoch seconds, lag ms) arrays, as it wrote them."""
    stamps, lags = array("d"), array("d")
    for arr, suffix in ((stamps, ".ts"), (lags, ".lag")):
        path = Path(out + suffix)
        if path.exists():
            arr.frombytes(path.read_bytes())
    return stamps, lags
