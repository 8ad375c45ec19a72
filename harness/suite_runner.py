"""Run scenario suites with pytest in a child process and turn the outcome into a report folder.

`reports/<timestamp>/` holds `junit.xml`, `pytest.log`, `summary.json`, `index.html` and whatever the
scenarios recorded (histories, checks); `reports/latest` points at the newest one.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from harness.errors import ConfigError
from harness.report import build_summary, read_junit, render_index

REPO = Path(__file__).resolve().parent.parent
SCENARIOS = REPO / "scenarios"
DEFAULT_SUITES: tuple[str, ...] = ()  # every scenarios/test_*.py


@dataclass(frozen=True)
class RunRequest:
    suites: tuple[str, ...] = DEFAULT_SUITES
    reports_root: Path = REPO / "reports"
    pytest_args: tuple[str, ...] = ()
    env: dict[str, str] = field(default_factory=dict)


def known_suites() -> list[str]:
    return sorted(p.stem.removeprefix("test_") for p in SCENARIOS.glob("test_*.py"))


def suite_paths(suites: tuple[str, ...]) -> list[Path]:
    """The suites' files; none named means all of them."""
    paths = [SCENARIOS / f"test_{name}.py" for name in suites or known_suites()]
    missing = [p.stem.removeprefix("test_") for p in paths if not p.is_file()]
    if missing:
        raise ConfigError(f"unknown suite {', '.join(missing)}; known suites: {', '.join(known_suites())}")
    return paths


def run_suites(request: RunRequest) -> tuple[dict[str, Any], Path]:
    """Runs the suites; returns the summary and the report folder."""
    paths = suite_paths(request.suites)
    folder = _new_report_folder(request.reports_root)
    started, t0 = datetime.now(timezone.utc).isoformat(timespec="seconds"), time.monotonic()
    _pytest(paths, folder, request)
    junit = folder / "junit.xml"
    cases = read_junit(junit) if junit.is_file() else []
    summary = build_summary(cases, started, time.monotonic() - t0)
    (folder / "summary.json").write_text(json.dumps(summary, indent=2))
    (folder / "index.html").write_text(render_index(summary))
    return summary, folder


def _pytest(paths: list[Path], folder: Path, request: RunRequest) -> None:
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-o", "junit_family=xunit1",
           f"--junitxml={folder / 'junit.xml'}",
           *map(str, paths), *request.pytest_args]
    env = {**os.environ, **request.env, "HARNESS_REPORT_DIR": str(folder)}
    with open(folder / "pytest.log", "w") as log:
        # Tee: the person watching sees progress, the report keeps the log.
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stdout.write(line)
            log.write(line)
        proc.wait()


def _new_report_folder(root: Path) -> Path:
    folder = root / datetime.now().strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    latest = root / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(folder.name)
    return folder
