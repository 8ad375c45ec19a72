"""`junit.xml` as CI test views read it, written from the summary (pytest's own file is `pytest-junit.xml`).

One `<testsuite>` per scenario suite; each case named as a person reads it (`test_x[param]`, no
`asyncio`), with its verdict, invariants, runbook section, replay command and files as properties, and
its evidence (failed invariants' counterexamples, fault windows) in `<system-out>`. A `fail` is a
`<failure>`, an `unknown` an `<error>` (never judged: the job is red, so is the test), `not_applicable` a
`<skipped>`. When the run's verdict is not a pass and no case says why (interrupted, nothing collected,
nothing applied), a synthetic case of the suite `harness` does, so the CI tab agrees with the red job.
"""
from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from typing import Any

from harness.report.junit_results import STAND_IN
from harness.report.summary import readable_name

__all__ = ["render_junit", "unexplained_verdict"]

_OUTCOME = {"fail": "failure", "unknown": "error", "not_applicable": "skipped"}
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")  # characters XML 1.0 cannot hold


def render_junit(summary: dict[str, Any]) -> str:
    suites: dict[str, list[dict[str, Any]]] = {}
    for s in summary["scenarios"]:
        suites.setdefault(s["suite"], []).append(s)
    root = ET.Element("testsuites", name="harness run")
    for name, scenarios in suites.items():
        root.append(_suite(name, scenarios, summary["started"]))
    why = unexplained_verdict(summary)
    if why:
        root.append(_suite("harness", [{"nodeid": "harness::run verdict", "suite": "harness", "verdict": "unknown",
                                        "seconds": summary["seconds"], "message": why, "detail": why}],
                           summary["started"]))
    _count(root, [case for suite in root for case in suite.iter("testcase")])
    ET.indent(root)
    return '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def unexplained_verdict(summary: dict[str, Any]) -> str | None:
    """Why the run is not a pass, when none of its scenarios' verdicts says it; else None."""
    if summary["verdict"] == "interrupted":
        return f"the run was interrupted ({summary.get('interrupted', 'pytest did not finish')}): never a pass"
    if summary["verdict"] == "pass" or any(s["verdict"] in ("fail", "unknown") for s in summary["scenarios"]):
        return None
    if summary.get("collected") == 0 or not summary["scenarios"]:
        return "no scenario was collected (or selected by -k): nothing ran, so the verdict is unknown"
    return "no scenario applied to the target (each was not applicable): nothing was judged, the verdict is unknown"


def _suite(name: str, scenarios: list[dict[str, Any]], started: str) -> ET.Element:
    suite = ET.Element("testsuite", name=name, timestamp=started)
    for s in scenarios:
        suite.append(_case(s))
    _count(suite, list(suite))
    return suite


def _count(element: ET.Element, cases: list[ET.Element]) -> None:
    """The counts CI reporters read on a suite (and on the whole)."""
    def n(tag: str) -> str:
        return str(sum(1 for c in cases if c.find(tag) is not None))
    element.attrib.update(tests=str(len(cases)), failures=n("failure"), errors=n("error"), skipped=n("skipped"),
                          time=f"{sum(float(c.get('time', 0)) for c in cases):.3f}")


def _case(s: dict[str, Any]) -> ET.Element:
    classname, _, _ = s["nodeid"].rpartition("::")
    name, params = readable_name(s["nodeid"])
    inside = [p for p in classname.split(".") if p[:1].isupper()]  # a test class: `suite.TestX`
    case = ET.Element("testcase", classname=".".join([s["suite"], *inside]),
                      name=f"{name}[{params}]" if params else name, time=f"{float(s['seconds']):.3f}")
    properties = ET.SubElement(case, "properties")
    for key, value in _properties(s).items():
        ET.SubElement(properties, "property", name=key, value=_clean(value))
    outcome = _OUTCOME.get(s["verdict"])
    if outcome:
        element = ET.SubElement(case, outcome, message=_clean(s["message"] or s["verdict"]))
        element.text = _clean(s.get("detail") or "") or None
    evidence = _evidence(s) if outcome in ("failure", "error") else ""
    if evidence:
        ET.SubElement(case, "system-out").text = _clean(evidence)
    return case


def _properties(s: dict[str, Any]) -> dict[str, str]:
    checks = s.get("checks") or {}
    props = {"verdict": s["verdict"], "runbook_section": s.get("runbook_section", ""),
             "invariants": ", ".join(f"{k}={_valid(v)}" for k, v in checks.items()),
             "reproduce": s.get("replay", ""), STAND_IN: (s.get("properties") or {}).get(STAND_IN, "")}
    props |= {f"artefact.{key}": path for key, path in (s.get("artefacts") or {}).items()}
    return {k: v for k, v in props.items() if v}


def _evidence(s: dict[str, Any]) -> str:
    """What a person needs beside the message: each invariant that did not hold with its counterexample,
    the fault windows, the replay command and where the files are."""
    lines = [f"{name}: {_valid(entry)}: {json.dumps(entry.get('counterexample') or entry.get('reason'), default=str)[:2000]}"
             for name, entry in (s.get("checks") or {}).items() if isinstance(entry, dict) and entry.get("valid") is not True]
    lines += [f"fault window: {json.dumps(f, default=str)}" for f in s.get("faults") or []]
    lines += [f"replay: {s['replay']}"] if s.get("replay") else []
    lines += [f"{key}: {path}" for key, path in (s.get("artefacts") or {}).items()]
    return "\n".join(lines)


def _valid(entry: Any) -> str:
    valid = entry.get("valid") if isinstance(entry, dict) else None
    return {True: "true", False: "false"}.get(valid, "unknown") if isinstance(valid, bool) else "unknown"


def _clean(text: str) -> str:
    return _NOT_XML.sub("?", text)
