"""Three-valued results and their composition (Jepsen's ``checker/compose``)."""

from __future__ import annotations

import traceback
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Union

from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.history import History, Record
from harness.model import Snapshot

Valid = Union[bool, Literal["unknown"]]
UNKNOWN: Literal["unknown"] = "unknown"
HistoryLike = Union[History, Iterable[Record]]
Checker = Callable[[HistoryLike, Union[Snapshot, None], CheckOptions], "Result"]


@dataclass(frozen=True)
class Result:
    valid: Valid
    evidence: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"valid": self.valid, **self.evidence}

    @property
    def ok(self) -> bool:
        return self.valid is True


def passed(**evidence: Any) -> Result:
    return Result(True, evidence)


def failed(**evidence: Any) -> Result:
    return Result(False, evidence)


def unknown(reason: str, **evidence: Any) -> Result:
    return Result(UNKNOWN, {"reason": reason, **evidence})


_RANK = {False: 0, UNKNOWN: 1, True: 2}


def merge_valid(values: Iterable[Valid]) -> Valid:
    """False beats unknown beats True; nothing to merge is True (vacuous), callers decide otherwise."""
    return min(values, key=lambda v: _RANK[v], default=True)


def safe_check(checker: Checker, history: HistoryLike, snapshot: Snapshot | None, opts: CheckOptions) -> Result:
    """Run one checker; an exception becomes ``unknown`` with the error, never a pass."""
    try:
        return checker(history, snapshot, opts)
    except Exception as exc:  # a broken checker must not hide the others
        return unknown("checker raised", error=repr(exc), traceback=traceback.format_exc(limit=5))


def compose(checkers: Mapping[str, Checker]) -> Checker:
    """One checker out of many: each result is kept under its name, the verdict is the worst."""

    def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
        records = history.records if isinstance(history, History) else tuple(history)
        results = {name: safe_check(c, records, snapshot, opts) for name, c in checkers.items()}
        valid = merge_valid(r.valid for r in results.values())
        return Result(valid, {name: r.to_dict() for name, r in results.items()})

    return check


__all__ = ["UNKNOWN", "Checker", "HistoryLike", "Result", "Valid", "compose", "failed",
           "merge_valid", "passed", "safe_check", "unknown"]
