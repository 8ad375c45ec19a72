"""`reproduction.json`: what it takes to run one scenario of a report again, as plain data.

The pytest plugin writes one into each scenario's folder under `harness run` (`reports/<time>/scenarios/
<slug>/`) before the test runs: its pytest node id, the target and stack options it ran with, the
project's commit; after the test, which files it left (the history holds its workload and fault
windows: it is referenced, not copied). A test adds what it chose itself (a random seed, a Hypothesis
failure's shrunk schedule) with `record`; on a replay it reads those back (`recorded_for`) so that it
runs the same choices. `harness replay` (harness/replay.py) turns the file into a pytest run.

External PostgreSQL or toxiproxy addresses are not recorded: they belong to the machine that ran the
report (and a DSN may carry a password); a replay uses the ones of the machine it runs on.
"""
from __future__ import annotations

import json
import os
import shlex
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

__all__ = ["FILE", "REPLAY_OF_ENV", "STACK_OPTIONS", "ScenarioChoices", "note_files", "project_commit", "read", "record", "recorded_for",
           "add_replay_commands", "local_path", "portable", "replay_args", "replay_command", "scenario_slug", "short_name", "write"]

FILE = "reproduction.json"
REPLAY_OF_ENV = "HARNESS_REPLAY_OF"  # set by `harness replay`: the report whose recorded choices a test reuses
STACK_OPTIONS = ("target", "infra", "service_dir", "service_command", "nginx")  # the pytest options a replay passes on
_PATHS = ("target", "service_dir")
REPO = Path(__file__).resolve().parent.parent


def scenario_slug(nodeid: str) -> str:
    """A scenario's folder name in a report: its pytest node id with every other character made safe."""
    return "".join(ch if ch.isalnum() or ch in "-_." else "_" for ch in nodeid)


def project_commit(repo: Path = REPO) -> dict[str, Any] | None:
    """`{"commit": sha, "dirty": bool}` of the harness's checkout; None without git or outside a repository."""
    try:
        head = subprocess.run(["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10)
        status = subprocess.run(["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                                capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if head.returncode != 0 or status.returncode != 0:
        return None
    return {"commit": head.stdout.strip(), "dirty": bool(status.stdout.strip())}


def write(folder: Path, nodeid: str, options: dict[str, str], commit: dict[str, Any] | None) -> Path:
    """A fresh reproduction.json in `folder`; `options`: the set ones of STACK_OPTIONS (paths inside the
    project relative to it, so a report replays in another checkout)."""
    unknown = sorted(set(options) - set(STACK_OPTIONS))
    if unknown:
        raise ValueError(f"not stack options: {unknown}")
    data: dict[str, Any] = {"nodeid": nodeid, "options": {k: portable(v) if k in _PATHS else v
                                          for k, v in options.items() if v},
            "commit": commit, "recorded": {}, "files": []}
    path = folder / FILE
    path.write_text(json.dumps(data, indent=1))
    return path


def read(path: Path) -> dict[str, Any]:
    """A reproduction.json; a missing or malformed one is a one-line ConfigError."""
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ConfigError(f"{path} is missing: the report was written before replays existed, or by hand") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("nodeid"), str) or not isinstance(data.get("options"), dict):
        raise ConfigError(f"{path} is not a reproduction (no nodeid or options)")
    return data


def record(path: Path, **values: Any) -> None:
    """Merge what the test chose (JSON values) into the file's `recorded`."""
    data = read(path)
    data["recorded"].update(values)
    path.write_text(json.dumps(data, indent=1))


def note_files(path: Path) -> None:
    """After the test: the files it left beside the reproduction (history.jsonl: its workload and faults)."""
    data = read(path)
    data["files"] = sorted(p.name for p in path.parent.iterdir() if p.name != FILE)
    path.write_text(json.dumps(data, indent=1))


def recorded_for(nodeid: str, env: dict[str, str] | None = None) -> dict[str, Any]:
    """Under `harness replay`: what the test recorded in the replayed report; else nothing."""
    report = (os.environ if env is None else env).get(REPLAY_OF_ENV)
    if not report:
        return {}
    path = Path(report) / "scenarios" / scenario_slug(nodeid) / FILE
    recorded: dict[str, Any] = read(path)["recorded"] if path.is_file() else {}
    return recorded


@dataclass(frozen=True)
class ScenarioChoices:
    """The `reproduction` fixture: `replayed` holds what the test recorded in the report being replayed
    (empty on a first run); `record(seed=...)` keeps this run's choices for a later replay."""

    path: Path | None  # None outside `harness run`: nothing to keep
    replayed: dict[str, Any] = field(default_factory=dict)

    def record(self, **values: Any) -> None:
        if self.path is not None:
            record(self.path, **values)


def replay_args(data: dict[str, Any]) -> list[str]:
    """The pytest options that rerun the scenario as recorded."""
    args: list[str] = []
    for key in STACK_OPTIONS:
        value = data["options"].get(key)
        if value:
            args += [f"--{key.replace('_', '-')}", str(local_path(value)) if key in _PATHS else value]
    return args


def short_name(nodeid: str) -> str:
    """`scenarios.test_x::test_y[p]` (a report's node id) -> `test_y[p]`, what `--scenario` takes."""
    return nodeid.rsplit("::", 1)[-1]


def add_replay_commands(report_dir: Path, scenarios: list[dict[str, Any]]) -> None:
    """Each failed scenario of a summary gets its `replay` command (by its short name, unless another
    scenario of the report has the same one)."""
    names = [short_name(s["nodeid"]) for s in scenarios]
    for entry, name in zip(scenarios, names):
        if entry["verdict"] == "fail":
            entry["replay"] = replay_command(report_dir, name if names.count(name) == 1 else entry["nodeid"])


def replay_command(report_dir: Path, scenario: str) -> str:
    """The one line a person pastes to run a failed scenario of the report again."""
    try:
        shown = os.path.relpath(report_dir)
    except ValueError:  # another drive (Windows): the absolute path
        shown = str(report_dir)
    shown = shown if not shown.startswith("..") else str(report_dir.resolve())
    return f"harness replay {shlex.quote(shown)} --scenario {shlex.quote(scenario)}"


def portable(value: str) -> str:
    """A path inside the project relative to it (a report stays valid in another checkout), else absolute."""
    path = Path(value).resolve()
    return str(path.relative_to(REPO)) if path.is_relative_to(REPO) else str(path)


def local_path(value: str) -> Path:
    """A recorded path on this machine: relative ones are inside the project."""
    return REPO / value if not Path(value).is_absolute() else Path(value)
