"""Read pytest's JUnit XML into plain per-test results.

A test that errored in set-up (the stack could not start, a fixture failed) is `unknown`, not `fail`:
the implementation was never judged. So is a test that failed because a stack it started in its body
(`stack_factory`) could not start. A skipped test is `unknown` too, never a pass, except one skipped
because the target lacks a capability it needs (`needs(...)` marker): that one is `not_applicable`,
reported as such with the missing capability, and counted neither as a pass nor against the run.
"""
from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

Verdict = Literal["pass", "fail", "unknown", "not_applicable"]
STACK_NOT_STARTED = "could not start the"  # how the pytest plugin fails a test whose stack did not start
NOT_APPLICABLE = "not applicable:"  # how the pytest plugin skips a test its target lacks a capability for
STAND_IN = "stand_in"  # the property naming the faults replaced by the nearest real one (harness.nemesis.stand_in)
RUNBOOK_SECTION = "runbook_section"  # the property naming the runbook section a test covers (harness.pytest_plugin)


@dataclass(frozen=True)
class CaseResult:
    nodeid: str
    suite: str
    verdict: Verdict
    seconds: float
    message: str = ""
    detail: str = ""
    properties: dict[str, str] = field(default_factory=dict)  # pytest's record_property values

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_junit(path: Path) -> list[CaseResult]:
    root = ET.parse(path).getroot()
    return [_case(case) for case in root.iter("testcase")]


def _case(case: ET.Element) -> CaseResult:
    classname = case.get("classname", "")
    verdict, outcome = _outcome(case)
    return CaseResult(
        nodeid=f"{classname}::{case.get('name', '')}",
        suite=_suite_of(classname),
        verdict=verdict,
        seconds=float(case.get("time", "0") or 0),
        message=(outcome.get("message", "") if outcome is not None else "")[:2000],
        detail=((outcome.text or "") if outcome is not None else "")[-8000:],
        properties={p.get("name", ""): p.get("value", "") for p in case.iter("property")},
    )


def _outcome(case: ET.Element) -> tuple[Verdict, ET.Element | None]:
    outcomes: tuple[tuple[str, Verdict], ...] = (("failure", "fail"), ("error", "unknown"), ("skipped", "unknown"))
    for tag, verdict in outcomes:
        found = case.find(tag)
        if found is not None:
            if tag == "failure" and STACK_NOT_STARTED in found.get("message", ""):
                return "unknown", found
            if tag == "skipped" and NOT_APPLICABLE in found.get("message", ""):
                return "not_applicable", found
            return verdict, found
    return "pass", None


def _suite_of(classname: str) -> str:
    """`scenarios.test_conformance.TestX` -> `conformance`."""
    module = next((part for part in classname.split(".") if part.startswith("test_")), classname)
    return module.removeprefix("test_")
