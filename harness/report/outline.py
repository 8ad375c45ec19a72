"""The report's order and marks, as plain data: scenarios grouped by runbook section, failures first;
each invariant's outcome, an expected violation (a scenario that provokes one on purpose, `judge(expect=)`)
told apart from a real one; a mark per verdict, so that no verdict is told by colour alone."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

from harness.report.names import params, title

__all__ = ["MARKS", "InvariantOutcome", "Section", "invariant_outcomes", "section_of", "sections", "sort_key"]

MARKS = {"pass": "✓", "fail": "✗", "unknown": "?", "not_applicable": "–", "interrupted": "?", "expected": "✓"}
NO_SECTION = "Other tests"
_RANK = {"fail": 0, "unknown": 1, "pass": 2, "not_applicable": 3}


@dataclass(frozen=True)
class Section:
    title: str
    scenarios: list[dict[str, Any]]  # failures first, then by name
    counts: dict[str, int]  # verdict -> scenarios, only the verdicts present


@dataclass(frozen=True)
class InvariantOutcome:
    name: str
    valid: Any  # True, False or "unknown", as the checker said
    expected: Any  # the verdict the scenario asserts (judge(expect=)), None when it asserts the invariant holds
    outcome: str  # pass | fail | unknown | expected (violated, as the scenario meant it to be)


def section_of(scenario: dict[str, Any]) -> str:
    """The runbook section the scenario covers (summary.json's `runbook_section`, else its JUnit property)."""
    return str(scenario.get("runbook_section") or (scenario.get("properties") or {}).get("runbook_section")
               or NO_SECTION)


def sort_key(scenario: dict[str, Any]) -> tuple[int, str, str]:
    return _RANK.get(scenario["verdict"], 1), title(scenario).lower(), params(scenario)


def sections(scenarios: list[dict[str, Any]]) -> list[Section]:
    """By runbook section: the sections with a failure first (then an unknown), each one's scenarios
    failures first; otherwise by title and name."""
    grouped: dict[str, list[dict[str, Any]]] = {}
    for s in scenarios:
        grouped.setdefault(section_of(s), []).append(s)
    out = [Section(title, sorted(members, key=sort_key), dict(Counter(s["verdict"] for s in members)))
           for title, members in grouped.items()]
    return sorted(out, key=lambda sec: (min(_RANK.get(v, 1) for v in sec.counts), sec.title))


def invariant_outcomes(checks: dict[str, Any] | None, expected: dict[str, Any] | None) -> list[InvariantOutcome]:
    """Each judged invariant's outcome, the ones to look at first: failures, unknowns, expected
    violations, then the ones that held (each group in the order judged)."""
    order = {"fail": 0, "unknown": 1, "expected": 2, "pass": 3}
    rows = [_outcome(name, entry.get("valid") if isinstance(entry, dict) else None, (expected or {}).get(name))
            for name, entry in (checks or {}).items()]
    return sorted(rows, key=lambda row: order[row.outcome])


def _outcome(name: str, valid: Any, expected: Any) -> InvariantOutcome:
    if expected is not None and expected is not True:
        outcome = "expected" if valid == expected else "fail"  # the violation the scenario provokes, or not
    else:
        outcome = {True: "pass", False: "fail"}.get(valid, "unknown") if isinstance(valid, bool) else "unknown"
    return InvariantOutcome(name, valid, expected, outcome)
