"""Run scenario suites with pytest in a child process and turn the outcome into a report folder.

`reports/<timestamp>/` holds `summary.json`, `summary.md`, `index.html`, `junit.xml` (for CI test views;
pytest's own is `pytest-junit.xml`), `pytest.log`, `progress.jsonl` (the progress events told to the caller
as pytest ran), the stacks' logs in `logs/` and whatever the scenarios recorded (histories, checks, service
log slices, post-mortems, each one's `reproduction.json`); `reports/latest` points at the newest run that
completed. reports/README.md describes the layout and summary.json's schema. Each failed scenario's entry in
the summary carries its `harness replay` command.

A run is complete when pytest exited normally (0, 1, or 5 for nothing collected) and its JUnit lists
every test it collected. Anything else (Ctrl-C, a crash, a killed pytest) is `interrupted`, never a
pass, whatever the finished tests said; `reports/latest` then keeps pointing at the last complete run.
"""
from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from harness.errors import ConfigError
from harness.pytest_plugin import COLLECTION_FILE, CONFIGURATION_FILE, PROGRESS_FILE
from harness.report import build_summary, read_junit, write_report
from harness.report.ci_junit import render_junit
from harness.report.markdown import render_markdown
from harness.report.run_context import configuration, harness_info, machine, redacted_args
from harness.report.summary import SCHEMA_VERSION
from harness.reproduction import add_replay_commands

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"
DEFAULT_SUITES: tuple[str, ...] = ()  # every scenarios/test_*.py
PYTEST_JUNIT = "pytest-junit.xml"  # pytest's own; the report's junit.xml is written from the summary


@dataclass(frozen=True)
class RunRequest:
    suites: tuple[str, ...] = DEFAULT_SUITES
    reports_root: Path = REPO / "reports"
    pytest_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)
    nodeids: tuple[str, ...] = ()  # run these tests only (pytest node ids), instead of the suites' files
    name: str | None = None  # the report folder's name under reports_root; default: the time


def known_suites() -> list[str]:
    return sorted(p.stem.removeprefix("test_") for p in SCENARIOS.glob("test_*.py"))


def suite_paths(suites: tuple[str, ...]) -> list[Path]:
    """The suites' files; none named means all of them."""
    paths = [SCENARIOS / f"test_{name}.py" for name in suites or known_suites()]
    missing = [p.stem.removeprefix("test_") for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(f"unknown suite {', '.join(missing)}; known suites: {', '.join(known_suites())}")
    return paths


Progress = Callable[[dict[str, Any]], None]  # told each progress event as it happens (harness/progress.py)
STILL_RUNNING_S = 60.0  # a scenario running this long (and each time as long again) is named as still running
POLL_S = 0.25


def run_suites(request: RunRequest, progress: Progress = lambda event: None) -> tuple[dict[str, Any], Path]:
    """Runs the suites; returns the summary and the report folder. `progress(event)` is told
    `{"event": "report_folder", "folder"}` first, then the pytest plugin's progress events as they come
    (PROGRESS_FILE), and `{"event": "running", "nodeid", "seconds"}` for a scenario running long."""
    paths: list[str | Path] = [*request.nodeids] or [*suite_paths(request.suites)]
    folder = _new_report_folder(request.reports_root, request.name)
    progress({"event": "report_folder", "folder": str(folder)})
    started, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.monotonic()
    code = _pytest(paths, folder, request, progress)
    summary = {**_context(folder, request), **judge_run(folder, code, started, time.monotonic() - t0)}
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    (folder / "junit.xml").write_text(render_junit(summary))
    (folder / "summary.md").write_text(render_markdown(summary))
    write_report(folder, summary)
    if summary["verdict"] != "interrupted":
        _point_latest(request.reports_root, folder)
    return summary, folder


def judge_run(folder: Path, pytest_exit: int, started: str, seconds: float) -> dict[str, Any]:
    """The summary of the run in `folder`; `interrupted` when pytest did not exit normally or its JUnit
    lists fewer tests than it collected (the finished ones alone can never make a pass)."""
    junit = folder / PYTEST_JUNIT
    cases = read_junit(junit) if junit.is_file() else []
    summary = build_summary(cases, started, seconds, folder)
    collection = folder / COLLECTION_FILE
    collected = json.loads(collection.read_text())["collected"] if collection.is_file() else None
    finished = len({case.nodeid for case in cases})
    why = []
    if pytest_exit not in (0, 1, 5):  # 2 interrupted, 3 internal error, 4 usage error, <0 killed by a signal
        why.append(f"pytest exited with code {pytest_exit}")
    if collected is None:
        why.append("pytest never finished collecting")
    elif finished < collected:
        why.append(f"only {finished} of the {collected} collected tests finished")
    summary.update(pytest_exit=pytest_exit, collected=collected, finished=finished)
    summary["scenarios"] = summary.pop("scenarios")  # the long list last, after the run's figures
    add_replay_commands(folder, summary["scenarios"])
    if why:
        summary.update(verdict="interrupted", interrupted="; ".join(why))
    return summary


def _context(folder: Path, request: RunRequest) -> dict[str, Any]:
    """summary.json's keys before the verdict: its schema, the harness, the command, the configuration
    (what the pytest child wrote of it, when it got that far) and the machine."""
    child_file = folder / CONFIGURATION_FILE
    child = json.loads(child_file.read_text()) if child_file.is_file() else {}
    suites = list(request.nodeids) or list(request.suites) or known_suites()
    return {"schema_version": SCHEMA_VERSION, "harness": harness_info(),
            # what asked for it: `harness run ...`, `harness replay ...`, a DSN's password left out
            "command": shlex.join(["harness", *redacted_args(tuple(sys.argv[1:]))]),
            "configuration": configuration(suites, request.pytest_args, child), "machine": machine()}


def _pytest(paths: list[str | Path], folder: Path, request: RunRequest, progress: Progress) -> int:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
           f"--junitxml={folder / PYTEST_JUNIT}",
           *map(str, paths), *request.pytest_args]
    env = {**os.environ, **request.env, "HARNESS_REPORT_DIR": str(folder)}
    with open(folder / "pytest.log", "w") as log:
        # pytest's whole output goes to the report; the person watching gets the progress events' lines.
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        try:
            _follow(proc, folder / PROGRESS_FILE, progress)
        except BaseException as exc:  # pytest ends its session and writes its JUnit; the run is judged interrupted
            proc.send_signal(signal.SIGINT)
            if not isinstance(exc, KeyboardInterrupt):  # e.g. a closed stdout: pytest and its stack end first
                proc.wait()
                raise
        return proc.wait()


def _follow(proc: subprocess.Popen[bytes], events: Path, progress: Progress) -> None:
    """Pass on each progress event the child appends to `events` until it exits, and name the scenario
    that has been running for STILL_RUNNING_S (again each STILL_RUNNING_S)."""
    offset, running, told = 0, "", 0.0  # bytes read; the scenario running, since when, told at
    since = time.monotonic()
    while True:
        exited = proc.poll() is not None
        offset, new = _read_lines(events, offset)
        for event in new:
            if event.get("event") in ("start", "end"):
                running = event["nodeid"] if event["event"] == "start" else ""
                since = told = time.monotonic()
            progress(event)
        if exited:
            return
        if running and time.monotonic() - told >= STILL_RUNNING_S:
            told = time.monotonic()
            progress({"event": "running", "nodeid": running, "seconds": round(told - since)})
        time.sleep(POLL_S)


def _read_lines(path: Path, offset: int) -> tuple[int, list[dict[str, Any]]]:
    """The whole JSON lines appended to `path` since `offset`, and the offset after them."""
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except FileNotFoundError:
        return offset, []
    complete = data[:data.rfind(b"\n") + 1]  # a line being written is read next time
    return offset + len(complete), [event for line in complete.splitlines() if (event := _event(line)) is not None]


def _event(line: bytes) -> dict[str, Any] | None:
    """A progress event; None for a line that is not one (a line of progress is never worth ending the run)."""
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) and "event" in event else None


def _new_report_folder(root: Path, name: str | None) -> Path:
    folder = (root / (name or datetime.now().strftime("%Y%m%d-%H%M%S"))).resolve()
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _point_latest(root: Path, folder: Path) -> None:
    """`latest` -> `folder`, replaced atomically (a reader never finds it missing)."""
    tmp = root / f".latest-{folder.name}"
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    tmp.symlink_to(folder.name)
    tmp.replace(root / "latest")
