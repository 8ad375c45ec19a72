"""The run's summary: plain data for `summary.json`, and the exit code a release pipeline gates on.

Each scenario's entry carries a readable name (the test's name and its parameters without the async
backend's `asyncio`), its runbook section, and its files as `artefacts`: paths relative to the report
folder, present only when the file exists. reports/README.md documents the whole schema.
"""
from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path
from typing import Any

from harness.report.junit_results import RUNBOOK_SECTION, CaseResult

EXIT_PASS, EXIT_FAIL, EXIT_UNKNOWN = 0, 1, 2
SCHEMA_VERSION = 1  # of summary.json (reports/README.md); raised when a key changes meaning or goes away
PATH_PROPERTIES = ("checks_file", "reproduction")  # JUnit properties holding a file's path
# artefact -> its file in the scenario's folder (scenarios/<slug>/)
ARTEFACTS = {"history": "history.jsonl", "snapshot": "snapshot.json", "checks": "checks.json",
             "reproduction": "reproduction.json", "service_log": "service.log",
             "diagnose": "postmortem/diagnose.json", "alerts": "postmortem/alerts.json"}
_BACKEND = re.compile(r"^asyncio(?:-|$)|-asyncio$")  # the anyio backend's id in every async test's name


def build_summary(cases: list[CaseResult], started: str, seconds: float, folder: Path | None = None) -> dict[str, Any]:
    """`folder`: the report folder the cases' files are in (their paths are given relative to it)."""
    counts: Counter[str] = Counter(case.verdict for case in cases)
    applied = len(cases) - counts.get("not_applicable", 0)
    return {
        "started": started,
        "seconds": round(seconds, 1),
        "verdict": _overall(counts, applied),
        "counts": {v: counts.get(v, 0) for v in ("pass", "fail", "unknown", "not_applicable")},
        "applied": {"scenarios": applied, "of": len(cases)},  # how much of the suite the target could be judged by
        "scenarios": [_scenario(case, folder or Path()) for case in cases],
    }


def describe_counts(summary: dict[str, Any]) -> str:
    """`41 of 50 scenarios applied: 40 pass, 1 fail, 0 unknown, 9 not applicable` (older summaries: counts only)."""
    counts = ", ".join(f"{n} {v.replace('_', ' ')}" for v, n in summary["counts"].items())
    applied = summary.get("applied")
    return f"{applied['scenarios']} of {applied['of']} scenarios applied: {counts}" if applied else counts


def exit_code(summary: dict[str, Any]) -> int:
    return {"pass": EXIT_PASS, "fail": EXIT_FAIL}.get(summary["verdict"], EXIT_UNKNOWN)


def readable_name(nodeid: str) -> tuple[str, str]:
    """`scenarios.test_x::test_y[asyncio-a-b]` -> (`test_y`, `a-b`): the test's name and its parameters."""
    short = nodeid.rsplit("::", 1)[-1]
    name, _, params = short.partition("[")
    return name, _BACKEND.sub("", params.removesuffix("]"))


def relative(path: str, folder: Path) -> str:
    """A path the child recorded, relative to the report folder when inside it (else as recorded)."""
    absolute = Path(path).resolve()
    return str(absolute.relative_to(folder.resolve())) if absolute.is_relative_to(folder.resolve()) else path


def _overall(counts: Counter[str], total: int) -> str:
    if counts.get("fail"):
        return "fail"
    if counts.get("unknown") or total == 0:
        return "unknown"  # nothing ran, or something could not be decided: never a pass
    return "pass"


def _scenario(case: CaseResult, folder: Path) -> dict[str, Any]:
    """A test's result, merged with the checks and fault windows it recorded itself, when it did."""
    entry = case.to_dict()
    name, params = readable_name(case.nodeid)
    properties = {k: relative(v, folder) if k in PATH_PROPERTIES and v else v for k, v in case.properties.items()}
    entry.update(name=name, params=params, properties=properties,
                 runbook_section=case.properties.get(RUNBOOK_SECTION, ""), artefacts=_artefacts(case, folder))
    recorded = folder / properties.get("checks_file", "")
    if recorded.name and recorded.is_file():
        entry.update(json.loads(recorded.read_text()))
    return entry


def _artefacts(case: CaseResult, folder: Path) -> dict[str, str]:
    """The scenario's files that exist, relative to the report folder (its folder is its reproduction's)."""
    recorded = case.properties.get("reproduction") or case.properties.get("checks_file")
    if not recorded:
        return {}
    scenario_dir = (folder / relative(recorded, folder)).parent
    found = {key: scenario_dir / name for key, name in ARTEFACTS.items()}
    return {key: relative(str(path), folder) for key, path in found.items() if path.is_file()}
