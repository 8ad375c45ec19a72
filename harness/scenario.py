"""What a scenario leaves behind: its history, the DB snapshot, and the checks' verdicts with evidence.

A scenario records into a `History`, takes a `Snapshot` through the observer, and asks `judge` for a
composed verdict. Everything is written as files in the scenario's folder (`history.jsonl`,
`snapshot.json`, `checks.json`) so a failed run can be re-checked offline and the report can show it.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.checks import CHECKERS, Result, Snapshot, compose
from harness.history import FaultWindow, History, of_kind


@dataclass
class ScenarioRecord:
    folder: Path
    history: History = field(default_factory=History)

    @property
    def checks_file(self) -> Path:
        return self.folder / "checks.json"

    def judge(self, snapshot: Snapshot, names: tuple[str, ...], opts: Mapping[str, Any] | None = None) -> Result:
        """The named invariants composed over this history and snapshot; all of it saved as files."""
        checker = compose({name: CHECKERS[name] for name in names})
        result = checker(self.history, snapshot, dict(opts or {}))
        (self.folder / "snapshot.json").write_text(json.dumps(snapshot.to_dict(), default=str))
        entry = {**_checks_entry(result, self.history), "opts": dict(opts or {})}  # opts: for `harness check`
        self.checks_file.write_text(json.dumps(entry, default=str, indent=1))
        self.save_history()
        return result

    def save_history(self) -> None:
        self.history.save(self.folder / "history.jsonl")


def explain(result: Result) -> str:
    """A short failure message: each invariant that did not pass, with its counterexample."""
    lines = []
    for name, entry in result.evidence.items():
        if entry.get("valid") is not True:
            detail = entry.get("counterexample") or entry.get("reason") or entry
            lines.append(f"{name}: {entry.get('valid')}: {json.dumps(detail, default=str)[:600]}")
    return "\n".join(lines) or "all invariants hold"


def _checks_entry(result: Result, history: History) -> dict[str, Any]:
    faults = [w.to_dict() for w in of_kind(history, FaultWindow)]
    return {"invariants": result.valid, "checks": result.evidence, "faults": faults}
