"""What a pipeline reads of a run, on hand-made pytest JUnit XML: our junit.xml (a testsuite per suite,
clean names, properties, evidence, a synthetic case for an unexplained unknown), summary.json's relative
paths, the Markdown summary appended to GITHUB_STEP_SUMMARY, and a scenario's slice of the service logs."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest

from harness.report import build_summary, read_junit
from harness.report.ci_junit import render_junit
from harness.report.log_slice import log_sizes, write_log_slice
from harness.report.markdown import STEP_SUMMARY_ENV, publish_markdown, render_markdown
from harness.report.run_context import redacted_args

PYTEST_JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="pytest">
  <testcase classname="scenarios.test_conformance" name="test_resume[asyncio-harness-from_seq]" time="1.5">
    <properties><property name="checks_file" value="{ok}/checks.json"/>
      <property name="reproduction" value="{ok}/reproduction.json"/>
      <property name="runbook_section" value="Service contract (docs/CONTRACTS.md)"/></properties>
  </testcase>
  <testcase classname="scenarios.test_run_stuck" name="test_gap[asyncio]" time="2">
    <properties><property name="checks_file" value="{bad}/checks.json"/>
      <property name="reproduction" value="{bad}/reproduction.json"/>
      <property name="runbook_section" value='"Run Stuck" Diagnostic Checklist'/></properties>
    <failure message="a client received past the gap: [1, 2, 3, 4, 6]">assert ...</failure></testcase>
  <testcase classname="scenarios.test_run_stuck.TestHeld" name="test_setup" time="0.1">
    <error message="could not start the stack: no toxiproxy">Traceback</error></testcase>
  <testcase classname="scenarios.test_conformance" name="test_crash[asyncio]" time="0">
    <skipped type="pytest.skip" message="not applicable: target node lacks failpoints"/></testcase>
</testsuite></testsuites>"""
BAD_CHECKS = {"checks": {"gapless": {"valid": False, "counterexample": {"missing": [5]}},
                         "ordering": {"valid": True}, "delivered_lag": {"valid": "unknown", "reason": "too few frames"}},
              "faults": [{"name": "pause", "target": "outbox-worker-0"}]}


def _report(tmp_path: Path) -> Path:
    """A report folder as the pytest child leaves it: two scenario folders, pytest's JUnit naming them."""
    folder = tmp_path / "report"
    ok, bad = folder / "scenarios" / "ok", folder / "scenarios" / "bad"
    for scenario in (ok, bad):
        (scenario / "postmortem").mkdir(parents=True)
        for name in ("history.jsonl", "reproduction.json", "service.log"):
            (scenario / name).write_text("{}\n")
    (ok / "checks.json").write_text(json.dumps({"checks": {"gapless": {"valid": True}}}))
    (bad / "checks.json").write_text(json.dumps(BAD_CHECKS))
    (bad / "postmortem" / "diagnose.json").write_text("{}")
    (folder / "pytest-junit.xml").write_text(PYTEST_JUNIT.format(ok=ok, bad=bad))
    return folder


def _summary(folder: Path) -> dict[str, Any]:
    summary = build_summary(read_junit(folder / "pytest-junit.xml"), "2026-12-02T10:00:00+00:00", 4.0, folder)
    summary["scenarios"][1]["replay"] = "harness replay reports/x --scenario 'test_gap[asyncio]'"
    return summary


def _junit(summary: dict[str, Any]) -> ET.Element:
    return ET.fromstring(render_junit(summary).encode())


def test_summary_paths_are_relative_to_the_report_and_name_scenarios_readably(tmp_path: Path) -> None:
    folder = _report(tmp_path)
    summary = _summary(folder)
    assert str(tmp_path) not in json.dumps(summary)
    ok, bad = summary["scenarios"][:2]
    assert (ok["name"], ok["params"], bad["name"], bad["params"]) == ("test_resume", "harness-from_seq", "test_gap", "")
    assert bad["runbook_section"] == '"Run Stuck" Diagnostic Checklist'
    assert bad["artefacts"] == {"history": "scenarios/bad/history.jsonl", "checks": "scenarios/bad/checks.json",
                                "reproduction": "scenarios/bad/reproduction.json",
                                "service_log": "scenarios/bad/service.log",
                                "diagnose": "scenarios/bad/postmortem/diagnose.json"}  # no snapshot, no alerts
    assert all((folder / path).is_file() for s in summary["scenarios"] for path in s["artefacts"].values())
    assert bad["properties"]["reproduction"] == "scenarios/bad/reproduction.json"
    assert bad["checks"]["gapless"]["valid"] is False  # checks.json found through its relative path


def test_junit_has_a_testsuite_per_suite_clean_names_and_each_verdict_as_ci_reads_it(tmp_path: Path) -> None:
    root = _junit(_summary(_report(tmp_path)))
    suites = {s.get("name"): s for s in root.iter("testsuite")}
    assert list(suites) == ["conformance", "run_stuck"]
    assert (root.get("tests"), root.get("failures"), root.get("errors"), root.get("skipped")) == ("4", "1", "1", "1")
    assert (suites["run_stuck"].get("tests"), suites["run_stuck"].get("failures")) == ("2", "1")
    names = [(c.get("classname"), c.get("name")) for c in root.iter("testcase")]
    assert names == [("conformance", "test_resume[harness-from_seq]"), ("conformance", "test_crash"),
                     ("run_stuck", "test_gap"), ("run_stuck.TestHeld", "test_setup")]
    gap = next(c for c in root.iter("testcase") if c.get("name") == "test_gap")
    props = {p.get("name"): p.get("value") for p in gap.iter("property")}
    assert props["verdict"] == "fail" and props["runbook_section"] == '"Run Stuck" Diagnostic Checklist'
    assert props["invariants"] == "gapless=false, ordering=true, delivered_lag=unknown"
    assert str(props["reproduce"]).startswith("harness replay") and props["artefact.service_log"] == "scenarios/bad/service.log"
    failure = gap.find("failure")
    assert failure is not None and failure.get("message") == "a client received past the gap: [1, 2, 3, 4, 6]"
    out = gap.findtext("system-out") or ""
    assert 'gapless: false: {"missing": [5]}' in out and "too few frames" in out and "outbox-worker-0" in out
    assert "ordering" not in out  # evidence is what did not hold
    setup = next(c for c in root.iter("testcase") if c.get("name") == "test_setup")
    assert setup.find("error") is not None  # unknown: never judged, red like the job
    crash = next(c for c in root.iter("testcase") if c.get("name") == "test_crash")
    assert crash.find("skipped") is not None and crash.find("system-out") is None


@pytest.mark.parametrize(("changes", "why"), [
    ({"verdict": "interrupted", "interrupted": "pytest exited with code 2"}, "interrupted (pytest exited with code 2)"),
    ({"verdict": "unknown", "scenarios": [], "collected": 0}, "no scenario was collected"),
    ({"verdict": "unknown", "only": "not_applicable"}, "no scenario applied"),
])
def test_an_unknown_verdict_no_case_explains_gets_a_synthetic_failing_case(tmp_path: Path, changes: dict[str, Any],
                                                                         why: str) -> None:
    summary = _summary(_report(tmp_path))
    if changes.pop("only", None):
        summary["scenarios"] = [s for s in summary["scenarios"] if s["verdict"] == "not_applicable"]
    root = _junit({**summary, **changes})
    synthetic = [c for c in root.iter("testcase") if c.get("classname") == "harness"]
    assert len(synthetic) == 1 and why in (synthetic[0].find("error").get("message") or "")  # type: ignore[union-attr]
    assert int(root.get("errors") or 0) >= 1
    assert why in render_markdown({**summary, **changes})  # the job's summary page says it too


def test_a_pass_or_a_verdict_its_cases_explain_gets_no_synthetic_case(tmp_path: Path) -> None:
    summary = _summary(_report(tmp_path))
    passed = {**summary, "verdict": "pass", "scenarios": summary["scenarios"][:1]}
    for one in (summary, passed):
        assert not [c for c in _junit(one).iter("testcase") if c.get("classname") == "harness"]


def test_the_markdown_summary_is_written_and_appended_to_the_step_summary(tmp_path: Path) -> None:
    summary = {**_summary(_report(tmp_path)), "harness": {"commit": "abcdef1234567890", "dirty": False},
               "configuration": {"target": "profiles/reference.toml"}}
    page = tmp_path / "step.md"
    page.write_text("earlier step\n")
    publish_markdown(summary, tmp_path / "out" / "summary.md", {STEP_SUMMARY_ENV: str(page)})
    written = (tmp_path / "out" / "summary.md").read_text()
    assert page.read_text() == "earlier step\n" + written
    assert written.startswith("## harness run: FAIL") and "commit `abcdef123456`" in written
    assert "| run_stuck | 0 | 1 | 1 | 0 |" in written
    assert "- **fail** run_stuck `test_gap`: a client received past the gap" in written
    assert "service log: `scenarios/bad/service.log`" in written
    publish_markdown(summary, None, {})  # neither a path nor a CI page: nothing written, nothing raised


def test_a_dsn_in_the_pytest_arguments_loses_its_password() -> None:
    shown = redacted_args(("-k", "x", "--postgres-dsn", "postgresql://u:s3cret@h/db", "--postgres-dsn=password=s3cret host=h"))
    assert "s3cret" not in json.dumps(shown) and shown[:2] == ["-k", "x"] and "host=h" in shown[-1]
    command = redacted_args(("run", "--dsn", "postgresql://u:s3cret@h/db", "--dsn=postgresql://u:s3cret@h/db"))
    assert "s3cret" not in json.dumps(command) and command[:2] == ["run", "--dsn"]  # `harness run`'s own spelling


def test_a_log_slice_is_what_each_file_gained_while_the_test_ran(tmp_path: Path) -> None:
    logs, other = tmp_path / "report" / "logs" / "stack", tmp_path / "elsewhere"
    logs.mkdir(parents=True)
    other.mkdir()
    (logs / "api-0.log").write_text("before 1\nbefore 2\n")
    (logs / "idle.log").write_text("quiet\n")
    before = log_sizes([logs, other])
    with open(logs / "api-0.log", "a") as f:
        f.write("during 1\nduring 2")
    (other / "new.log").write_text("whole\n")  # a stack started by the test
    out = tmp_path / "service.log"
    assert write_log_slice([logs, other], before, out, tmp_path / "report")
    text = out.read_text()
    assert text == f"==> logs/stack/api-0.log <==\nduring 1\nduring 2\n\n==> {other / 'new.log'} <==\nwhole\n"
    assert not write_log_slice([logs], log_sizes([logs]), tmp_path / "none.log", tmp_path)
