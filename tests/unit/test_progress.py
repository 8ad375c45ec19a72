"""`harness run`'s live lines and closing summary, from plain data (harness/progress.py), and a test's verdict
from its phases as the live line tells it (harness/pytest_plugin.py phase_verdict)."""
from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from harness.commands import output
from harness.commands.explore import example_line
from harness.commands.mutants import result_line
from harness.mutants import MutantResult
from harness.progress import closing, first_false, header, live_line, readable, reason, rerun_command, scenario_line
from harness.pytest_plugin import phase_verdict

NODE = "scenarios/test_run_stuck.py::test_seq_gap_stops_the_outbox[asyncio-pause]"
GAPLESS_FALSE = {"valid": False, "checked": 1, "counterexample": {"key": "r1", "run_id": "r1", "seq": 5, "last_seq": 9,
                                                                  "missing": [[5, 5]], "repeated": []}}
CHECKS = {"invariants": False, "expected": {},
          "checks": {"exactly_once": {"valid": True, "checked": 3},
                     "ordering": {"valid": "unknown", "reason": "no frames"},
                     "gapless": GAPLESS_FALSE}}


def test_a_node_id_reads_as_its_suite_and_words_with_its_parameters_kept() -> None:
    assert readable(NODE) == "seq gap stops the outbox [pause]"  # every async test runs on asyncio: left out
    assert readable("scenarios/test_x.py::test_y[asyncio]") == "y"
    assert readable("scenarios.test_x.TestC::test_y") == "y"
    long = "scenarios/test_x.py::test_" + "word_" * 30 + "end[p1]"
    assert readable(long, 20) == "word word word wo... [p1]"  # the name is cut, never its parameters


def test_the_first_false_invariant_is_named_before_an_undecided_one_with_its_counterexample() -> None:
    assert first_false(CHECKS) == ("gapless", False, "seq=5 last_seq=9 missing=[[5, 5]]")
    undecided = {"checks": {"ordering": {"valid": "unknown", "reason": "no frames"}}}
    assert first_false(undecided) == ("ordering", "unknown", "no frames")
    assert first_false({"checks": {"ordering": {"valid": True}}}) is None


def test_a_verdict_the_scenario_expected_is_not_the_reason() -> None:
    provoked = {**CHECKS, "expected": {"gapless": False}}
    assert first_false(provoked) == ("ordering", "unknown", "no frames")


def test_a_reason_prefers_the_checkers_own_words() -> None:
    assert reason({"valid": False, "problem": "nextSeq != lastSeq + 1", "backlog": 3}) == "nextSeq != lastSeq + 1"
    assert reason({"valid": False, "counterexample": {"problem": "seq did not increase", "seq": 4}}) == "seq did not increase"
    assert reason({"valid": False, "counterexample": {"run_id": "r", "wall": 1.0, "blob": "x" * 99, "seq": 2}}) == "seq=2"


def test_a_failed_scenario_line_names_its_first_false_invariant() -> None:
    event = {"event": "end", "nodeid": NODE, "verdict": "fail", "seconds": 4.21, "index": 7, "total": 50,
             "message": "AssertionError: gapless: False: {...}"}
    line = scenario_line(event, CHECKS).plain
    assert line == "[ 7/50] FAIL    run_stuck  seq gap stops the outbox [pause]  gapless ✗ seq=5 last_seq=9" \
                   " missing=[[5, 5]]  4.2 s"


@pytest.mark.parametrize(("verdict", "message", "says"), [
    ("pass", "", "[1/2] pass    run_stuck  seq gap stops the outbox [pause]  0.5 s"),
    ("fail", "AssertionError: a reconnect from cursor 1 started at seq 1\nassert 1 == 2",
     "FAIL    run_stuck  seq gap stops the outbox [pause]  a reconnect from cursor 1 started at seq 1  0.5 s"),
    ("not_applicable", "not applicable: target node lacks failpoints (crash points)", "n/a     run_stuck"),
    ("unknown", "error in setup: could not start the stack-logs: port taken", "UNKNOWN run_stuck"),
])
def test_a_scenario_line_without_checks_says_what_pytest_said(verdict: str, message: str, says: str) -> None:
    event = {"event": "end", "nodeid": NODE, "verdict": verdict, "seconds": 0.5, "index": 1, "total": 2,
             "message": message, "checks_file": None}
    line = live_line(event)
    assert line is not None and says in line.plain
    assert ("target node lacks failpoints" in line.plain) == (verdict == "not_applicable")


def test_a_scenario_line_reads_the_checks_file_its_event_names(tmp_path: Path) -> None:
    checks = tmp_path / "checks.json"
    checks.write_text('{"checks": {"gapless": {"valid": false, "problem": "seq 5 missing"}}}')
    event = {"event": "end", "nodeid": NODE, "verdict": "fail", "seconds": 1, "index": 1, "total": 1,
             "message": "AssertionError", "checks_file": str(checks)}
    line = live_line(event)
    assert line is not None and "gapless ✗ seq 5 missing" in line.plain


@pytest.mark.parametrize(("event", "says"), [
    ({"event": "collected", "count": 50}, "collected 50 scenario(s)"),
    ({"event": "component", "name": "postgres", "seconds": 1.234}, "  stack: postgres up in 1.2 s"),
    ({"event": "stack", "seconds": 4.25}, "  stack ready in 4.2 s"),
    ({"event": "running", "nodeid": NODE, "seconds": 120.4},
     "  ... still running: run_stuck  seq gap stops the outbox [pause]  120 s"),
])
def test_the_other_events_lines(event: dict[str, Any], says: str) -> None:
    line = live_line(event)
    assert line is not None and line.plain == says
    assert live_line({"event": "start", "nodeid": NODE}) is None  # the end tells; a long one gets "still running"


def test_the_header_names_suites_service_and_report_folder() -> None:
    lines = [t.plain for t in header(["conformance", "run_stuck"], "gap or 'x y'", "reference (profiles/reference.toml)",
                                     Path("/r/20261202-1"))]
    assert lines == ["harness run: 2 suite(s): conformance, run_stuck; -k 'gap or '\"'\"'x y'\"'\"''",
                     "  service under test: reference (profiles/reference.toml)", "  report folder: /r/20261202-1"]
    assert header([], None, "s", Path("r"))[0].plain == "harness run: every suite"


def _summary(scenarios: list[dict[str, Any]]) -> dict[str, Any]:
    counts = {v: sum(s["verdict"] == v for s in scenarios) for v in ("pass", "fail", "unknown", "not_applicable")}
    verdict = "fail" if counts["fail"] else "unknown" if counts["unknown"] else "pass"
    return {"verdict": verdict, "seconds": 123.4, "counts": counts, "scenarios": scenarios,
            "applied": {"scenarios": len(scenarios), "of": len(scenarios)}}


FAILED = {"nodeid": "scenarios.test_run_stuck::test_seq_gap_stops_the_outbox[asyncio-pause]", "suite": "run_stuck",
          "verdict": "fail", "message": "AssertionError: gapless: False", **CHECKS,
          "replay": "harness replay reports/20261202-1 --scenario 'test_seq_gap_stops_the_outbox[asyncio-pause]'"}


def test_the_closing_summary_gives_each_failure_its_reason_and_the_commands_to_run_it_again() -> None:
    passed = {"nodeid": "scenarios.test_run_stuck::test_ok", "suite": "run_stuck", "verdict": "pass", "message": ""}
    lines = [t.plain for t in closing(_summary([passed, FAILED]), Path("/r/20261202-1"), ["--target", "my t.toml"])]
    assert lines == [
        "FAIL in 123 s: 2 of 2 scenarios applied: 1 pass, 1 fail, 0 unknown, 0 not applicable",
        "FAIL run_stuck  seq gap stops the outbox [pause]: gapless ✗ seq=5 last_seq=9 missing=[[5, 5]]",
        "    replay: harness replay reports/20261202-1 --scenario 'test_seq_gap_stops_the_outbox[asyncio-pause]'",
        "    rerun:  harness run -s run_stuck -k test_seq_gap_stops_the_outbox --target 'my t.toml'",
        "report: /r/20261202-1/index.html",
        "pytest output: /r/20261202-1/pytest.log",
    ]


def test_the_closing_summary_lists_the_first_few_unjudged_and_says_how_many_more() -> None:
    unknown = [{"nodeid": f"scenarios.test_x::test_{i}", "suite": "x", "verdict": "unknown",
                "message": "could not start the stack-logs: no go"} for i in range(13)]
    summary = {**_summary(unknown), "interrupted": "pytest exited with code 2"}
    lines = [t.plain for t in closing(summary, Path("r"), [])]
    assert lines[1] == "  interrupted: pytest exited with code 2; latest not moved"
    assert lines[2] == "UNKNOWN x  0: could not start the stack-logs: no go"
    assert sum(line.startswith("UNKNOWN x") for line in lines) == 10 and "  ... and 3 more not judged" in lines[12]
    assert not any("rerun" in line for line in lines)  # nothing was judged: no verdict to reproduce


def test_rerun_takes_the_test_without_its_parameters() -> None:
    assert rerun_command(FAILED, []) == "harness run -s run_stuck -k test_seq_gap_stops_the_outbox"


def test_lines_reach_a_pipe_plain_and_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    """A CI log (no terminal, 80 columns) gets no colour codes and a long path on the line it belongs to."""
    out = io.StringIO()
    monkeypatch.setattr(output, "stdout", Console(file=out, width=80))
    folder = Path("/builds/team/project/reports/20261202-164811-with-a-long-name-that-passes-eighty-columns")
    for line in closing(_summary([FAILED]), folder, []):
        output.say(line)
    text = out.getvalue()
    assert "\x1b[" not in text
    assert f"report: {folder}/index.html\n" in text and f"    replay: {FAILED['replay']}\n" in text


@pytest.mark.parametrize(("phases", "verdict"), [
    ([("setup", "passed", ""), ("call", "passed", ""), ("teardown", "passed", "")], "pass"),
    ([("setup", "passed", ""), ("call", "failed", "AssertionError: x"), ("teardown", "failed", "boom")], "fail"),
    ([("setup", "passed", ""), ("call", "failed", "could not start the factory-stack-logs: y")], "unknown"),
    ([("setup", "failed", "fixture broke"), ("teardown", "passed", "")], "unknown"),
    ([("setup", "passed", ""), ("call", "passed", ""), ("teardown", "failed", "left running")], "unknown"),
    ([("setup", "skipped", "not applicable: target t lacks failpoints")], "not_applicable"),
    ([("setup", "skipped", "nginx is not installed")], "unknown"),
])
def test_a_tests_verdict_from_its_phases_is_its_junit_verdict(phases: list[tuple[str, str, str]], verdict: str) -> None:
    assert phase_verdict(phases)[0] == verdict


def test_a_mutants_line_as_its_runs_end() -> None:
    killed = MutantResult("cursor_off_by_one", "killed", "test_x[p]", 41.23, "AssertionError: cursor 1 " + "x" * 200)
    line = result_line(killed, 3, 43).plain
    assert line.startswith("[3/43] cursor_off_by_one: killed  41.2 s  test_x[p]: AssertionError: cursor 1 xx")
    assert line.endswith("...") and len(line) < 200
    survived = MutantResult("reference (control)", "survived", None, 15.5, "3 scenario(s) passed")
    assert result_line(survived, 43, 43).plain == "[43/43] reference (control): survived  15.5 s  3 scenario(s) passed"


def test_an_explore_examples_line_says_when_the_shrinking_began() -> None:
    assert example_line(3, 9, "kept every invariant", 4.12, budget=20, shrinking=False).plain == \
        "[3/20] 9 steps: kept every invariant  4.1 s"
    assert example_line(7, 4, "failed: gapless: False", 2.0, budget=20, shrinking=True).plain == \
        "[shrinking 7] 4 steps: failed: gapless: False  2.0 s"
