"""The report's reading of JUnit XML and its three-valued verdict, on hand-written XML."""
from __future__ import annotations

import json
from pathlib import Path

from harness.report import build_summary, describe_counts, exit_code, read_junit, render_index

JUNIT = """<?xml version="1.0"?>
<testsuites><testsuite name="pytest">
  <testcase classname="scenarios.test_conformance" name="test_ok" time="1.5">
    <properties><property name="checks_file" value="{checks}"/></properties>
  </testcase>
  <testcase classname="scenarios.test_conformance.TestX" name="test_bad" time="2">
    <failure message="seq 7 delivered twice">assert ...</failure></testcase>
  <testcase classname="scenarios.test_flapping" name="test_setup" time="0.1">
    <error message="stack could not start">Traceback</error></testcase>
  <testcase classname="scenarios.test_flapping" name="test_skipped" time="0">
    <skipped message="no nginx"/></testcase>
  <testcase classname="scenarios.test_conformance" name="test_crash" time="0">
    <skipped type="pytest.skip" message="not applicable: target node lacks failpoints (faults inside the service)"/>
  </testcase>
</testsuite></testsuites>"""


def _write(tmp_path: Path) -> Path:
    checks = tmp_path / "checks.json"
    checks.write_text(json.dumps({"checks": {"exactly_once": {"valid": True}}}))
    junit = tmp_path / "junit.xml"
    junit.write_text(JUNIT.format(checks=checks))
    return junit


def test_reads_verdicts_and_suites(tmp_path: Path) -> None:
    cases = read_junit(_write(tmp_path))
    assert [(c.suite, c.verdict) for c in cases] == [
        ("conformance", "pass"), ("conformance", "fail"), ("flapping", "unknown"), ("flapping", "unknown"),
        ("conformance", "not_applicable")]
    assert "lacks failpoints" in cases[-1].message
    assert cases[1].message == "seq 7 delivered twice"


def test_failure_outranks_unknown_and_merges_recorded_checks(tmp_path: Path) -> None:
    summary = build_summary(read_junit(_write(tmp_path)), "2026-01-01T00:00:00+00:00", 3.0)
    assert summary["verdict"] == "fail" and exit_code(summary) == 1
    assert summary["counts"] == {"pass": 1, "fail": 1, "unknown": 2, "not_applicable": 1}
    assert summary["scenarios"][0]["checks"] == {"exactly_once": {"valid": True}}
    assert "seq 7 delivered twice" in render_index(summary, tmp_path)


def test_skips_or_nothing_run_are_never_a_pass(tmp_path: Path) -> None:
    cases = [c for c in read_junit(_write(tmp_path)) if c.verdict != "fail"]
    assert exit_code(build_summary(cases, "t", 1.0)) == 2
    assert exit_code(build_summary([], "t", 0.0)) == 2
    assert exit_code(build_summary(cases[:1], "t", 1.0)) == 0


def test_not_applicable_scenarios_are_neither_a_pass_nor_held_against_the_run(tmp_path: Path) -> None:
    cases = read_junit(_write(tmp_path))
    passed, not_applicable = cases[0], cases[-1]
    summary = build_summary([passed, not_applicable], "t", 1.0)
    assert summary["verdict"] == "pass" and exit_code(summary) == 0
    assert summary["applied"] == {"scenarios": 1, "of": 2}
    assert describe_counts(summary).startswith("1 of 2 scenarios applied: 1 pass") and "1 not applicable" in \
        describe_counts(summary)
    assert "1 of 2 scenarios applied" in render_index(summary, tmp_path)
    assert exit_code(build_summary([not_applicable], "t", 1.0)) == 2  # nothing applied: never a pass
