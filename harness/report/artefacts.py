"""A scenario's files in the report (summary.json's `artefacts`, paths relative to the report folder),
and the commands that run it again."""
from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

from harness import reproduction
from harness.errors import ConfigError

__all__ = ["LABELS", "links", "reproduce_commands", "scenario_folder"]

# artefact key (harness.report.summary.ARTEFACTS) -> what the link says
LABELS = {"history": "history", "snapshot": "DB snapshot", "checks": "checks", "reproduction": "reproduction",
          "service_log": "service log", "diagnose": "post-mortem diagnose", "alerts": "post-mortem alerts"}


def scenario_folder(report: Path, scenario: dict[str, Any]) -> Path | None:
    """Where the scenario's files are (`scenarios/<slug>/`), None when it left none."""
    named = scenario.get("artefacts") or {}
    first = named.get("reproduction") or named.get("history") or named.get("checks")
    return (report / first).parent if first else None


def links(report: Path, scenario: dict[str, Any]) -> dict[str, str]:
    """What the page links to: label -> path relative to the report folder, for the files that exist."""
    named = scenario.get("artefacts") or {}
    return {label: named[key] for key, label in LABELS.items() if named.get(key) and (report / named[key]).is_file()}


def reproduce_commands(report: Path, scenario: dict[str, Any]) -> list[str]:
    """`harness replay` for a failed scenario (the summary's), and the pytest command that runs it as
    it ran (its reproduction.json's node id and stack options), when the report has that file."""
    commands = [scenario["replay"]] if scenario.get("replay") else []
    recorded = (scenario.get("artefacts") or {}).get("reproduction")
    try:
        data = reproduction.read(report / recorded) if recorded else None
    except ConfigError:
        data = None
    if data is None:
        return commands
    args = ["python", "-m", "pytest", "-p", "no:cacheprovider", data["nodeid"], *reproduction.replay_args(data)]
    return [*commands, shlex.join(args)]
