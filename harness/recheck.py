"""Offline re-check: the checkers re-run over what a scenario left behind (`history.jsonl`,
`snapshot.json`, and `checks.json` for what it judged, with which opts, and the verdicts it expected),
without any stack.

By default a scenario is re-judged exactly as the run judged it: the invariants it named, its opts, and
its expected verdicts (a scenario that provokes a gap on purpose expects `gapless: False`; that verdict
is then a pass). `--invariant` or `--all` judge other invariants, with no expectation.

A folder is a scenario folder (it holds `history.jsonl`), a report folder (`<dir>/scenarios/*/`), or a
folder of scenario folders. In a report, a scenario that never judged (no `snapshot.json`) is skipped.
"""
from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.checks import CHECKERS, CheckOptions, Result, Valid, compose, merge_valid
from harness.model import Snapshot
from harness.errors import ConfigError
from harness.history import History

__all__ = ["Recheck", "find_scenarios", "recheck_folder", "recheck_all", "overall", "as_expected"]


@dataclass(frozen=True)
class Recheck:
    folder: Path
    result: Result | None  # None: skipped
    recorded: dict[str, Any] = field(default_factory=dict)  # invariant -> verdict recorded at run time
    skipped: str | None = None
    expected: dict[str, Valid] = field(default_factory=dict)  # invariant -> the verdict the scenario expected

    @property
    def valid(self) -> Valid | None:
        """The scenario's verdict: each invariant's own, or whether it matched the expected one."""
        return None if self.result is None else as_expected(self.result, self.expected)

    def to_dict(self) -> dict[str, Any]:
        if self.result is None:
            return {"folder": str(self.folder), "skipped": self.skipped}
        return {"folder": str(self.folder), "valid": self.valid, "checks": self.result.evidence,
                "recorded": self.recorded, "expected": self.expected}


def as_expected(result: Result, expected: Mapping[str, Valid]) -> Valid:
    """Merge of the invariants' verdicts where an expected verdict replaces the invariant's own: it
    passes when the checker found what the scenario expected, fails when it found the other boolean,
    and stays unknown when the checker could not decide."""
    verdicts: list[Valid] = []
    for name, entry in result.evidence.items():
        valid = entry.get("valid")
        if name in expected and isinstance(valid, bool):
            valid = valid == expected[name]
        verdicts.append(valid)
    return merge_valid(verdicts)


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


def recheck_folder(folder: Path, names: Sequence[str], *, single: bool = True, every: bool = False) -> Recheck:
    """Re-judge one scenario folder: the named invariants (no expectation), every one (`every`), or by
    default what the scenario judged, with its expected verdicts (every invariant when it recorded none)."""
    if not (folder / "snapshot.json").is_file():
        if single:
            raise ConfigError(f"{folder}: missing snapshot.json (the scenario never took a snapshot)")
        return Recheck(folder, None, skipped="not judged: no snapshot.json")
    history = _load(folder / "history.jsonl", History.load)
    snapshot = _load(folder / "snapshot.json", lambda p: Snapshot.from_dict(json.loads(Path(p).read_text())))
    checks = _load(folder / "checks.json", lambda p: json.loads(Path(p).read_text())) \
        if (folder / "checks.json").is_file() else {}
    judged = checks.get("judged") or list(checks.get("checks") or {})
    as_run = not names and not every
    selected = names_or_all(names or (judged if as_run else ()))
    try:  # recorded as plain JSON: every option (older runs: only those the scenario passed)
        opts = CheckOptions.from_mapping(checks.get("opts") or {})
    except ConfigError as exc:
        raise ConfigError(f"{folder / 'checks.json'}: {exc}") from exc
    result = compose({n: CHECKERS[n] for n in selected})(history, snapshot, opts)
    recorded = {n: e.get("valid") for n, e in (checks.get("checks") or {}).items() if isinstance(e, dict)}
    expected = dict(checks.get("expected") or {}) if as_run else {}
    return Recheck(folder, result, recorded, expected=expected)


def recheck_all(root: Path, names: Sequence[str], *, every: bool = False) -> list[Recheck]:
    names_or_all(names)  # a bad name is a usage error before any file is read
    folders, single = find_scenarios(root)
    return [recheck_folder(f, names, single=single, every=every) for f in folders]


def overall(rechecks: Sequence[Recheck]) -> Valid:
    judged = [v for v in (r.valid for r in rechecks) if v is not None]  # None: skipped
    return merge_valid(judged) if judged else "unknown"


def _load(path: Path, reader: Any) -> Any:
    try:
        return reader(path)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"{path}: unreadable: {exc}") from exc
