"""A scenario's files in the report folder, as links relative to it, and the commands that run it again.

summary.json's `artefacts` names them when the summary has them; older summaries are read by the
scenario's folder (`scenarios/<slug>/`, harness/reproduction.py) and the files in it.
"""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from harness import reproduction
from harness.errors import ConfigError
from harness.report.names import pytest_nodeid

__all__ = ["LINKS", "links", "reproduce_commands", "scenario_folder"]

# artefact key -> (file in the scenario's folder, what the link says)
LINKS = {
    "history": ("history.jsonl", "history"),
    "snapshot": ("snapshot.json", "DB snapshot"),
    "checks": ("checks.json", "checks"),
    "reproduction": (reproduction.FILE, "reproduction"),
    "service_log": ("", "service log"),  # the run's log lines of this scenario: only summary.json names it
}


def scenario_folder(report: Path, scenario: dict[str, Any]) -> Path:
    """Where the scenario's files are: `scenarios/<slug of its pytest node id>/` of the report."""
    return report / "scenarios" / reproduction.scenario_slug(pytest_nodeid(scenario["nodeid"]))


def links(report: Path, scenario: dict[str, Any]) -> dict[str, str]:
    """What the page links to, label -> path relative to the report folder, for the files that exist."""
    named = scenario.get("artefacts") or {}
    folder = scenario_folder(report, scenario)
    out = {}
    for key, (file, label) in LINKS.items():
        relative = named.get(key) or (_relative(folder / file, report) if file else None)
        if relative and (report / relative).is_file():
            out[label] = relative
    return out


def reproduce_commands(report: Path, scenario: dict[str, Any]) -> list[str]:
    """`harness replay` for a failed scenario (the summary's), and the pytest command that runs it as
    it ran (its reproduction.json's node id and stack options), when the report has that file."""
    commands = [scenario["replay"]] if scenario.get("replay") else []
    path = scenario_folder(report, scenario) / reproduction.FILE
    try:
        data = reproduction.read(path)
    except ConfigError:
        return commands
    args = ["python", "-m", "pytest", "-p", "no:cacheprovider", data["nodeid"], *reproduction.replay_args(data)]
    return [*commands, shlex.join(args)]


def _relative(path: Path, report: Path) -> str:
    return path.relative_to(report).as_posix()
