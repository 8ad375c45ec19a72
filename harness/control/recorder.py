"""The flight recorder of a stack owned by `harness up` (`harness record start` / `stop`).

The harness cannot see other people's clients, so while a recording runs the owner subscribes an
observing SSE consumer (`rec0`, `rec1`, ...) from seq 0 to every run that is active or created meanwhile
(found in the database) and records their frames in a History, on a thread and event loop of its own.
`stop` lets each consumer reach its run's end (or gives up after a bound), turns the fault log's lines
of the recording's span into fault windows of the same History, takes the database snapshot of the
recorded runs and writes a scenario folder (history.jsonl, snapshot.json, checks.json) that `harness
check` judges like a scenario's. Requests made by hand (curl) are not in the history: only what the
observers received is.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import psycopg

from harness.control.fault_log import iso, log_lines
from harness.errors import ConfigError, PostgresError
from harness.history import ConnClosed, FaultWindow, History, of_kind
from harness.observer import snapshot_of
from harness.scenario import DELIVERY, ScenarioRecord
from harness.stack import LocalStack
from harness.workload import ConsumerConfig
from harness.workload.sse_consumer import SSEConsumer

__all__ = ["RECORD_ACTIONS", "Recorder", "fault_windows"]

POLL_S = 0.3  # how soon a new run gets its observer
DEADLINE_S = 24 * 3600.0  # an observer follows its run for as long as the recording lasts
# Runs active now, or created since the recording began (the database's clock on both sides).
_RUNS = "SELECT id FROM runs WHERE state IN ('queued', 'started') OR createdAt >= %s ORDER BY createdAt"


class Recording:
    """One recording: its observers run on a thread with its own event loop until `finish`."""

    def __init__(self, stack: LocalStack) -> None:
        self.stack, self.history = stack, History()
        self.began = time.time()
        self.runs: list[str] = []
        self._stop = threading.Event()
        self._wait_s = 0.0
        with self._db() as conn:  # the database's own clock, the one createdAt is written in
            self._since = conn.execute("SELECT now()").fetchone()[0]  # type: ignore[index]
        self._thread = threading.Thread(target=asyncio.run, args=(self._observe(),), name="harness-record",
                                        daemon=True)
        self._thread.start()

    def _db(self) -> psycopg.Connection[Any]:
        try:
            return psycopg.connect(self.stack.info.dsn, autocommit=True, connect_timeout=5)
        except psycopg.Error as exc:
            raise PostgresError(f"the recorder could not read the database: {exc}") from exc

    def _new_runs(self) -> list[str]:
        try:
            with self._db() as conn:
                found = [str(row[0]) for row in conn.execute(_RUNS, (self._since,)).fetchall()]
        except (PostgresError, psycopg.Error):
            return []  # the database is the fault being worked on: look again at the next poll
        return [run for run in found if run not in self.runs]

    async def _observe(self) -> None:
        config = ConsumerConfig(base_url=self.stack.info.api_url, stream_path=self.stack.profile.stream_path,
                                max_reconnects=1_000_000, deadline_s=DEADLINE_S)
        tasks: list[asyncio.Task[Any]] = []
        while True:
            stopping = self._stop.is_set()  # one more look after the stop: a run created since the last poll counts
            for run in await asyncio.to_thread(self._new_runs):
                consumer = SSEConsumer(config, self.history)
                tasks.append(asyncio.create_task(consumer.consume(run, f"rec{len(self.runs)}")))
                self.runs.append(run)
            if stopping:
                break
            await asyncio.sleep(POLL_S)
        if tasks:
            _, late = await asyncio.wait(tasks, timeout=self._wait_s)
            for task in late:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

    def finish(self, wait_s: float) -> list[str]:
        """Stop looking for runs, give the observers up to `wait_s` to reach their run's end (cut off
        after that); returns the runs still observed when cut off."""
        self._wait_s = wait_s
        self._stop.set()
        self._thread.join()
        return [run for run, done in self._ended().items() if not done]

    def _ended(self) -> dict[str, bool]:
        closes = of_kind(self.history, ConnClosed)
        return {run: any(c.run_id == run and c.reason in ("terminal", "terminal_open", "204") for c in closes)
                for run in self.runs}


def fault_windows(lines: list[dict[str, Any]], began: float, ended: float) -> list[FaultWindow]:
    """The fault log's faults active at any time in [began, ended], as windows on this process's
    monotonic clock; one not ended by `ended` has no end (it was never healed within the history)."""
    to_mono = time.monotonic() - time.time()
    starts: dict[str, tuple[dict[str, Any], float]] = {}
    ends: dict[str, float] = {}
    for line in lines:
        at = datetime.fromisoformat(line["at"]).timestamp()
        if line.get("op") == "start" and at <= ended:
            starts[line["id"]] = (line, at)
        elif line.get("op") == "end" and at <= ended:
            ends[line["id"]] = at
    windows = []
    for fault_id, (line, start) in starts.items():
        end = ends.get(fault_id)
        if end is not None and end < began:
            continue  # over before the recording began
        params = {"id": fault_id, **(line.get("params") or {})}
        windows.append(FaultWindow(str(line["fault"]), str(line["target"]), start + to_mono,
                                   None if end is None else end + to_mono, start, end, params))
    return windows


class Recorder:
    """The owner's recorder: at most one recording at a time; safe to call from any thread."""

    def __init__(self, stack: LocalStack, fault_log: Path) -> None:
        self.stack, self.fault_log = stack, fault_log
        self._lock = threading.Lock()
        self._current: Recording | None = None

    def start(self) -> dict[str, Any]:
        with self._lock:
            if self._current is not None:
                raise ConfigError(f"a recording is already running (since {iso(self._current.began)}):"
                                  " `harness record stop` ends it")
            self._current = Recording(self.stack)
            return {"lines": [f"recording since {iso(self._current.began)}: every run active or created from now"
                              " on is observed; `harness record stop` writes the folder"]}

    def stop(self, out: str, wait_s: float = 10.0) -> dict[str, Any]:
        with self._lock:
            recording, self._current = self._current, None
        if recording is None:
            raise ConfigError("no recording is running: `harness record start` begins one")
        unfinished = recording.finish(wait_s)
        ended = time.time()
        for window in fault_windows(log_lines(self.fault_log), recording.began, ended):
            recording.history.append(window)
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        record = ScenarioRecord(folder, recording.history)
        result = record.judge(snapshot_of(self.stack, recording.runs), DELIVERY)
        return {"folder": str(folder), "runs": recording.runs, "unfinished": unfinished,
                "valid": result.valid, "lines": _summary(folder, recording, unfinished, ended)}

    def abandon(self) -> None:
        """The owner is stopping: end the observers, write nothing."""
        with self._lock:
            recording, self._current = self._current, None
        if recording is not None:
            recording.finish(0.0)


def _summary(folder: Path, recording: Recording, unfinished: list[str], ended: float) -> list[str]:
    faults = sum(1 for r in recording.history.records if isinstance(r, FaultWindow))
    lines = [f"recorded {ended - recording.began:.1f}s: {len(recording.runs)} run(s), {faults} fault window(s)"
             f" -> {folder}"]
    if not recording.runs:
        lines.append("no run was active or created while recording: nothing to judge (verdict unknown)")
    if unfinished:
        lines.append(f"not ended when the recording stopped (judged as they stood): {', '.join(unfinished)}")
    return lines


RECORD_ACTIONS: dict[str, Callable[..., dict[str, Any]]] = {"record_start": Recorder.start, "record_stop": Recorder.stop}
