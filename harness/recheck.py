"""Offline re-check: the checkers re-run over what a scenario left behind (`history.jsonl`,
`snapshot.json`, and `checks.json` for the opts and verdicts it recorded), without any stack.

A folder is a scenario folder (it holds `history.jsonl`), a report folder (`<dir>/scenarios/*/`), or a
folder of scenario folders. In a report, a scenario that never judged (no `snapshot.json`) is skipped.
"""
from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.checks import CHECKERS, Result, Snapshot, compose, merge_valid
from harness.errors import ConfigError
from harness.history import History

__all__ = ["Recheck", "find_scenarios", "recheck_folder", "recheck_all"]


@dataclass(frozen=True)
class Recheck:
    folder: Path
    result: Result | None  # None: skipped
    recorded: dict[str, Any] = field(default_factory=dict)  # invariant -> verdict recorded at run time
    skipped: str | None = None

    def to_dict(self) -> dict[str, Any]:
        if self.result is None:
            return {"folder": str(self.folder), "skipped": self.skipped}
        return {"folder": str(self.folder), "valid": self.result.valid, "checks": self.result.evidence,
                "recorded": self.recorded}


def find_scenarios(root: Path) -> tuple[list[Path], bool]:
    """The scenario folders under `root`, and whether `root` was a single scenario folder."""
    if not root.is_dir():
        raise ConfigError(f"{root}: not a folder")
    if (root / "history.jsonl").is_file():
        return [root], True
    base = root / "scenarios" if (root / "scenarios").is_dir() else root
    found = sorted(p for p in base.iterdir() if (p / "history.jsonl").is_file())
    if not found:
        raise ConfigError(f"{root}: no history.jsonl here, in scenarios/*/ or in */ (not a scenario or report folder)")
    return found, False


def names_or_all(names: Sequence[str]) -> tuple[str, ...]:
    unknown = [n for n in names if n not in CHECKERS]
    if unknown:
        raise ConfigError(f"unknown invariant(s) {unknown}; known: {', '.join(CHECKERS)}")
    return tuple(dict.fromkeys(names)) or tuple(CHECKERS)


def recheck_folder(folder: Path, names: Sequence[str], *, single: bool = True,
                   recorded_only: bool = False) -> Recheck:
    """Re-run the named checkers (all when empty; with `recorded_only`, those the scenario judged)
    over one scenario folder."""
    if not (folder / "snapshot.json").is_file():
        if single:
            raise ConfigError(f"{folder}: missing snapshot.json (the scenario never took a snapshot)")
        return Recheck(folder, None, skipped="not judged: no snapshot.json")
    history = _load(folder / "history.jsonl", History.load)
    snapshot = _load(folder / "snapshot.json", lambda p: Snapshot.from_dict(json.loads(Path(p).read_text())))
    checks = _load(folder / "checks.json", lambda p: json.loads(Path(p).read_text())) \
        if (folder / "checks.json").is_file() else {}
    judged = [n for n in (checks.get("checks") or {}) if n in CHECKERS]
    selected = names_or_all(names or (judged if recorded_only else ()))
    result = compose({n: CHECKERS[n] for n in selected})(history, snapshot, dict(checks.get("opts") or {}))
    recorded = {n: e.get("valid") for n, e in (checks.get("checks") or {}).items() if isinstance(e, dict)}
    return Recheck(folder, result, recorded)


def recheck_all(root: Path, names: Sequence[str], *, recorded_only: bool = False) -> list[Recheck]:
    names_or_all(names)  # a bad name is a usage error before any file is read
    folders, single = find_scenarios(root)
    return [recheck_folder(f, names, single=single, recorded_only=recorded_only) for f in folders]


def overall(rechecks: Sequence[Recheck]) -> Any:
    judged = [r.result.valid for r in rechecks if r.result is not None]
    return merge_valid(judged) if judged else "unknown"


def _load(path: Path, reader: Any) -> Any:
    try:
        return reader(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable: {exc}") from exc
