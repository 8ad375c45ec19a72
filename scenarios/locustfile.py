"""Locust users for `harness load` (harness/load/): writers that create runs and append or script their
events, and stream users that hold SSE streams and measure each live frame's lag.

Run by `harness load` as a Locust subprocess, never imported by pytest (`import locust` monkey-patches
the process with gevent): pytest collects `scenarios/test_*.py` only, and nothing imports this file.

Stream users read with geventhttpclient's `readline(b"\\n")` (Locust's `iter_lines` reads 1024-byte
blocks: false lag on small frames), parse with the project's one SSE parser, record every connection,
frame and heartbeat as the scenarios' consumers do (harness.workload.sse_consumer.Connection) and fire
one Locust request per frame: `live lag` with the frame's lag as its response time, or `catch-up` for
the backfill after a (re)connect. They reconnect with `Last-Event-ID` after an error or a read timeout.
Each process writes its recorded history to `--record-dir` when it quits; the harness judges it.

The gate: live lags are counted in the runbook's classes from raw values (harness/load/lag_classes.py),
workers send their counts and CPU warnings to the master, and the master (or the local runner) sets
Locust's exit code from harness.load.verdict.lag_verdict and writes them to `--lag-file`.
"""
from __future__ import annotations

import json
import os
import socket
import time
from collections import deque
from pathlib import Path
from typing import Any

import gevent
import locust.runners
import locust.stats
from geventhttpclient import HTTPClient, URL
from locust import FastHttpUser, constant, events, task
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from harness.history import History
from harness.load.frame_watch import delivery_problem, is_live, lag_ms
from harness.load.lag_classes import ClassCounts, count_classes, ms_bucket
from harness.load.verdict import lag_verdict
from harness.model import TERMINAL_TYPE
from harness.workload.sse_consumer import Connection
from harness.workload.sse_parser import SSEEvent, SSEParser

locust.stats.bucket_response_time = ms_bucket  # 1 ms buckets, not ~2 significant digits
# The gate reads Locust's CPU warning: sample every 2 s instead of 10 (whose first reading is at 20 s)
locust.runners.CPU_MONITOR_INTERVAL = 2.0

YIELD_EVERY = 20  # frames between gevent.sleep(0): a socket that always has data never yields otherwise
AFTER_TERMINAL_S = 1.0  # how long to wait for the server's close after RunFinished

HISTORY = History()
RUNS: deque[str] = deque()  # runs the writers of this process offer to its stream users
_lags: list[float] = []  # live lags (ms) not yet counted into the classes
_counts = ClassCounts()
_cpu_warned = False
_users = 0


def _opts(environment: Environment) -> Any:
    return environment.parsed_options


@events.init_command_line_parser.add_listener
def _arguments(parser: Any) -> None:
    group = parser.add_argument_group("harness load")
    group.add_argument("--write-url", default="", help="where writers send their requests (default: --host)")
    group.add_argument("--stream-path", default="/api/agents/runs/{run_id}/stream")
    group.add_argument("--read-timeout", type=float, default=3.0, help="seconds (2-3 x the heartbeat)")
    group.add_argument("--steps", type=int, default=50, help="events of a scripted run")
    group.add_argument("--interval-ms", type=int, default=100, help="between a run's events")
    group.add_argument("--readers-per-run", type=int, default=2)
    group.add_argument("--record-dir", default="", help="each process writes frames-<pid>.jsonl here")
    group.add_argument("--lag-file", default="", help="the master writes the lag classes here")
    group.add_argument("--gate", default="normal", choices=["normal", "warning"])
    group.add_argument("--min-samples", type=int, default=100)
    group.add_argument("--cpu-warning-percent", type=float, default=90.0)


def _set_cpu_threshold(environment: Environment, **_: Any) -> None:
    # Locust reads this module global on every CPU sample; a lower one is for testing the inconclusive path
    locust.runners.CPU_WARNING_THRESHOLD = _opts(environment).cpu_warning_percent


events.init.add_listener(_set_cpu_threshold)
events.test_start.add_listener(_set_cpu_threshold)  # a remote worker gets the master's options on spawn


@events.cpu_warning.add_listener
def _on_cpu_warning(**_: Any) -> None:
    global _cpu_warned
    _cpu_warned = True


def _take_counts() -> ClassCounts:
    global _lags
    counted, _lags = count_classes(_lags), []
    return counted


@events.report_to_master.add_listener
def _report(client_id: str, data: dict[str, Any]) -> None:
    data["lag_classes"] = _take_counts().to_dict()
    data["harness_cpu_warning"] = _cpu_warned


@events.worker_report.add_listener
def _merge(client_id: str, data: dict[str, Any]) -> None:
    global _counts, _cpu_warned
    _counts = _counts + ClassCounts.from_dict(data.get("lag_classes") or {})
    _cpu_warned = _cpu_warned or bool(data.get("harness_cpu_warning"))


@events.quitting.add_listener
def _quitting(environment: Environment, **_: Any) -> None:
    global _counts
    opts = _opts(environment)
    if opts.record_dir:
        Path(opts.record_dir).mkdir(parents=True, exist_ok=True)
        HISTORY.save(Path(opts.record_dir) / f"frames-{socket.gethostname()}-{os.getpid()}.jsonl")
    if isinstance(environment.runner, WorkerRunner):
        return
    _counts = _counts + _take_counts()
    cpu = _cpu_warned or bool(environment.runner and environment.runner.cpu_log_warning())
    verdict = lag_verdict(_counts, opts.gate, cpu, opts.min_samples)
    environment.process_exit_code = verdict.exit_code
    if opts.lag_file:
        Path(opts.lag_file).write_text(json.dumps({
            "classes": _counts.to_dict(), "cpu_warning": cpu, "verdict": verdict.verdict,
            "reasons": list(verdict.reasons), "workers": isinstance(environment.runner, MasterRunner)}, indent=1))


def _fire(environment: Environment, name: str, ms: float, length: int = 0, error: str | None = None) -> None:
    environment.events.request.fire(request_type="SSE", name=name, response_time=ms, response_length=length,
                                    exception=None if error is None else DeliveryProblem(error), context={})


class DeliveryProblem(Exception):
    """A frame out of the consumer's sequence, or a stream that could not be read (in Locust's failures)."""


class _Writer(FastHttpUser):
    abstract = True

    def _url(self, path: str) -> str:
        return (_opts(self.environment).write_url or self.host or "").rstrip("/") + path

    def _create(self, body: dict[str, Any], name: str) -> str | None:
        with self.client.post(self._url("/api/agents/runs"), json=body, name=name, catch_response=True) as resp:
            if resp.status_code != 201:
                resp.failure(f"HTTP {resp.status_code}: {(resp.text or '')[:200]}")
                return None
            return str(resp.json()["runId"])

    def _offer(self, run_id: str) -> None:
        RUNS.extend([run_id] * _opts(self.environment).readers_per_run)


class ScriptedRuns(_Writer):
    """Creates runs whose queue-worker job appends their events (`{"script": {steps, interval_ms}}`), one at
    a time: the next once this one's script has had its time, so the queue never backs up behind the load."""

    weight = 1

    def wait_time(self) -> float:
        opts = _opts(self.environment)
        return float(opts.steps * opts.interval_ms / 1000)

    @task
    def scripted_run(self) -> None:
        opts = _opts(self.environment)
        run_id = self._create({"script": {"steps": opts.steps, "interval_ms": opts.interval_ms}}, "create scripted run")
        if run_id is not None:
            self._offer(run_id)


class AppendedRuns(_Writer):
    """Creates a run without a job and appends its events itself, then cancels it (the terminal)."""

    weight = 1
    wait_time = constant(0)

    @task
    def appended_run(self) -> None:
        opts = _opts(self.environment)
        run_id = self._create({"script": {}, "job": False}, "create run")
        if run_id is None:
            return
        self._offer(run_id)
        for step in range(opts.steps):
            self.client.post(self._url(f"/api/agents/runs/{run_id}/events"), name="append",
                             json={"type": "RunStep", "payload": {"step": step}})
            gevent.sleep(opts.interval_ms / 1000)
        self.client.post(self._url(f"/api/agents/runs/{run_id}/cancel"), json={}, name="cancel")


class Streams(FastHttpUser):
    """Holds one run's SSE stream at a time, from seq 0 to its terminal, reconnecting as a browser does."""

    weight = 4
    wait_time = constant(0)

    def on_start(self) -> None:
        global _users
        self.consumer = f"{socket.gethostname()}-{os.getpid()}-s{_users}"
        _users += 1
        self.runs_followed = 0

    @task
    def follow_a_run(self) -> None:
        self._follow(self._next_run(), f"{self.consumer}r{self.runs_followed}")
        self.runs_followed += 1

    def _next_run(self) -> str:
        while not RUNS:  # the writers of this process offer each run to --readers-per-run stream users
            gevent.sleep(0.1)
        return RUNS.popleft()

    def _follow(self, run_id: str, consumer: str) -> None:
        cursor, n, backoff = 0, 0, 0.1
        while True:
            conn = Connection(HISTORY, f"{consumer}#{n}", consumer, run_id, cursor)
            n += 1
            reason = self._connect(conn, cursor)
            if conn.saw_terminal or reason == "204":
                return
            if conn.frames:
                backoff = 0.1
            cursor = conn.cursor
            gevent.sleep(backoff)
            backoff = min(backoff * 2, 2.0)

    def _connect(self, conn: Connection, cursor: int) -> str:
        """One connection: recorded open to close; returns its close reason."""
        opts = _opts(self.environment)
        url = URL((self.host or "").rstrip("/") + opts.stream_path.format(run_id=conn.run_id) + "?fromSeq=0")
        headers = {"Accept": "text/event-stream", "Cache-Control": "no-cache"}
        if cursor:
            headers["Last-Event-ID"] = str(cursor)  # a browser keeps the URL and sends its last id
        conn.request = (0, headers.get("Last-Event-ID"))
        client = HTTPClient.from_url(url, concurrency=1, connection_timeout=5.0, network_timeout=opts.read_timeout)
        requested = time.time()
        try:
            resp = client.get(url.request_uri, headers=headers)
            conn.open(resp.status_code)
            _fire(self.environment, "connect", (time.time() - requested) * 1000)
            if resp.status_code == 204:
                return conn.close("204")
            if resp.status_code != 200:
                _fire(self.environment, "connect", 0, error=f"run {conn.run_id}: HTTP {resp.status_code}")
                return conn.close("error", f"HTTP {resp.status_code}")
            return self._read(conn, resp, requested)
        except (TimeoutError, socket.timeout) as exc:
            return conn.close("timeout", repr(exc))
        except gevent.GreenletExit:
            conn.close("timeout", "the load ended")
            raise
        except Exception as exc:  # a reset, a refused connect, a cut: reconnect like a client
            _fire(self.environment, "stream error", 0, error=f"run {conn.run_id}: {exc!r}")
            return conn.close("error", repr(exc))
        finally:
            client.close()

    def _read(self, conn: Connection, resp: Any, requested: float) -> str:
        parser, frames = SSEParser(), 0
        while True:
            line = resp.readline(b"\n")
            if not line:
                return conn.close("eof")
            for item in parser.feed_line(line.decode("utf-8", "replace").rstrip("\r\n")):
                before = conn.cursor
                frame = conn.item(item)
                if frame is None or not isinstance(item, SSEEvent):
                    continue
                problem = delivery_problem(conn.run_id, before, frame.seq)
                if problem is not None:
                    _fire(self.environment, "delivery", 0, error=problem)
                if frame.event_ts is not None:
                    lag = lag_ms(frame.event_ts, frame.wall)
                    live = is_live(frame.event_ts, requested)
                    if live:
                        _lags.append(lag)
                    _fire(self.environment, "live lag" if live else "catch-up", max(lag, 0.0), len(item.data))
                if frame.type == TERMINAL_TYPE:
                    return self._after_terminal(conn, resp)
                frames += 1
                if frames % YIELD_EVERY == 0:
                    gevent.sleep(0)  # fairness between streams near saturation

    def _after_terminal(self, conn: Connection, resp: Any) -> str:
        """Whatever follows RunFinished is recorded (the terminal check fails it); then who closed."""
        parser = SSEParser()
        try:
            with gevent.Timeout(AFTER_TERMINAL_S):
                while line := resp.readline(b"\n"):
                    for item in parser.feed_line(line.decode("utf-8", "replace").rstrip("\r\n")):
                        conn.item(item)
        except gevent.Timeout:
            return conn.close("terminal_open", f"still open {AFTER_TERMINAL_S}s after the terminal event")
        except OSError as exc:
            return conn.close("terminal", repr(exc))
        return conn.close("terminal")
