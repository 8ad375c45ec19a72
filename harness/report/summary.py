"""The run's summary: plain data for `summary.json`, and the exit code a release pipeline gates on."""
from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from harness.report.junit_results import CaseResult

EXIT_PASS, EXIT_FAIL, EXIT_UNKNOWN = 0, 1, 2


def build_summary(cases: list[CaseResult], started: str, seconds: float) -> dict[str, Any]:
    counts: Counter[str] = Counter(case.verdict for case in cases)
    applied = len(cases) - counts.get("not_applicable", 0)
    return {
        "started": started,
        "seconds": round(seconds, 1),
        "verdict": _overall(counts, applied),
        "counts": {v: counts.get(v, 0) for v in ("pass", "fail", "unknown", "not_applicable")},
        "applied": {"scenarios": applied, "of": len(cases)},  # how much of the suite the target could be judged by
        "scenarios": [_scenario(case) for case in cases],
    }


def describe_counts(summary: dict[str, Any]) -> str:
    """`41 of 50 scenarios applied: 40 pass, 1 fail, 0 unknown, 9 not applicable` (older summaries: counts only)."""
    counts = ", ".join(f"{n} {v.replace('_', ' ')}" for v, n in summary["counts"].items())
    applied = summary.get("applied")
    return f"{applied['scenarios']} of {applied['of']} scenarios applied: {counts}" if applied else counts


def exit_code(summary: dict[str, Any]) -> int:
    return {"pass": EXIT_PASS, "fail": EXIT_FAIL}.get(summary["verdict"], EXIT_UNKNOWN)


def _overall(counts: Counter[str], total: int) -> str:
    if counts.get("fail"):
        return "fail"
    if counts.get("unknown") or total == 0:
        return "unknown"  # nothing ran, or something could not be decided: never a pass
    return "pass"


def _scenario(case: CaseResult) -> dict[str, Any]:
    """A test's result, merged with the checks and fault windows it recorded itself, when it did."""
    entry = case.to_dict()
    recorded = Path(case.properties.get("checks_file", ""))
    if recorded.name and recorded.is_file():
        entry.update(json.loads(recorded.read_text()))
    return entry
