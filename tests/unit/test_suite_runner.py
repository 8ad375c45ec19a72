"""`harness run`'s verdict is whole: an interrupted or partial run is `interrupted` (never a pass) and
`reports/latest` moves only when a run completes. Real pytest sessions on tiny suites, no stack."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from harness import suite_runner
from harness.report import exit_code
from harness.suite_runner import PYTEST_JUNIT, RunRequest, judge_run, run_suites

PASSING = "def test_one():\n    pass\n\ndef test_two():\n    pass\n"
# The second test stands for a Ctrl-C mid-run: pytest stops, its JUnit lists the tests that finished.
INTERRUPTED = "def test_one():\n    pass\n\ndef test_two():\n    raise KeyboardInterrupt\n\ndef test_three():\n    pass\n"


@pytest.fixture
def suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "test_good.py").write_text(PASSING)
    (folder / "test_cut.py").write_text(INTERRUPTED)
    monkeypatch.setattr(suite_runner, "SCENARIOS", folder)
    return folder


def _run(tmp_path: Path, suite: str) -> tuple[dict[str, Any], Path]:
    return run_suites(RunRequest(suites=(suite,), reports_root=tmp_path / "reports",
                                 pytest_args=("-p", "harness.pytest_plugin")))


@pytest.mark.usefixtures("suites")
def test_a_complete_run_passes_and_moves_latest(tmp_path: Path) -> None:
    summary, folder = _run(tmp_path, "good")
    assert (summary["verdict"], summary["collected"], summary["finished"], summary["pytest_exit"]) == ("pass", 2, 2, 0)
    assert (tmp_path / "reports" / "latest").resolve() == folder.resolve()


@pytest.mark.usefixtures("suites")
def test_an_interrupted_run_is_never_a_pass_and_leaves_latest_alone(tmp_path: Path) -> None:
    _, complete = _run(tmp_path, "good")
    summary, folder = _run(tmp_path, "cut")
    assert summary["verdict"] == "interrupted" and exit_code(summary) == 2, summary
    assert summary["counts"]["fail"] == 0  # what finished passed: only the collected count tells
    assert "pytest exited with code 2" in summary["interrupted"]
    assert json.loads((folder / "summary.json").read_text())["verdict"] == "interrupted"
    assert (tmp_path / "reports" / "latest").resolve() == complete.resolve()


def _junit(folder: Path, names: list[str]) -> None:
    cases = "".join(f'<testcase classname="scenarios.test_x" name="{n}" time="1"/>' for n in names)
    (folder / PYTEST_JUNIT).write_text(f"<testsuites><testsuite>{cases}</testsuite></testsuites>")


@pytest.mark.parametrize(("collected", "code", "verdict", "why"), [
    (2, 0, "pass", None),
    (3, 0, "interrupted", "only 2 of the 3 collected tests finished"),  # a JUnit cut short
    (2, -9, "interrupted", "pytest exited with code -9"),  # pytest killed
    (None, 1, "interrupted", "pytest never finished collecting"),
])
def test_collected_against_finished_and_the_exit_code(tmp_path: Path, collected: int | None, code: int,
                                                      verdict: str, why: str | None) -> None:
    _junit(tmp_path, ["test_a", "test_b"])
    if collected is not None:
        (tmp_path / "collection.json").write_text(json.dumps({"collected": collected}))
    summary = judge_run(tmp_path, code, "t", 1.0)
    assert (summary["verdict"], summary.get("interrupted")) == (verdict, why)


# A pass, a failure, a skip, and a test that runs long enough to be named as still running (the limit
# is lowered below); its end arrives while the next test is still sleeping, i.e. before pytest exits.
LIVE = ("import time\n\ndef test_quick():\n    pass\n\ndef test_broken():\n    assert 1 == 2, 'one is not two'\n\n"
        "def test_skipped():\n    import pytest\n    pytest.skip('nginx is not installed')\n\n"
        "def test_slow():\n    time.sleep(1.2)\n\ndef test_last():\n    time.sleep(1.0)\n")


def test_progress_events_come_as_each_test_ends_and_name_a_long_one(tmp_path: Path, suites: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    (suites / "test_live.py").write_text(LIVE)
    monkeypatch.setattr(suite_runner, "STILL_RUNNING_S", 0.5)
    events: list[tuple[float, dict[str, Any]]] = []
    summary, folder = run_suites(RunRequest(suites=("live",), reports_root=tmp_path / "reports",
                                            pytest_args=("-p", "harness.pytest_plugin")),
                                 lambda event: events.append((time.monotonic(), event)))
    kinds = [e["event"] for _, e in events]
    assert kinds[:2] == ["report_folder", "collected"] and events[0][1]["folder"] == str(folder)
    ends = [e for _, e in events if e["event"] == "end"]
    assert [(e["nodeid"].rsplit("::")[-1], e["verdict"], e["index"], e["total"]) for e in ends] == [
        ("test_quick", "pass", 1, 5), ("test_broken", "fail", 2, 5), ("test_skipped", "unknown", 3, 5),
        ("test_slow", "pass", 4, 5), ("test_last", "pass", 5, 5)]
    assert "one is not two" in ends[1]["message"] and ends[2]["message"] == "nginx is not installed"
    running = [e for _, e in events if e["event"] == "running"]
    assert running and running[0]["nodeid"].endswith("::test_slow") and running[0]["seconds"] >= 0.5
    # test_slow's end was told about a second before the last event (test_last's end): as it happened
    told = {e["nodeid"].rsplit("::")[-1]: at for at, e in events if e["event"] == "end"}
    assert told["test_last"] - told["test_slow"] > 0.7
    assert summary["counts"] == {"pass": 3, "fail": 1, "unknown": 1, "not_applicable": 0}
    log = (folder / "pytest.log").read_text()
    assert "one is not two" in log and "1 failed, 3 passed, 1 skipped" in log  # pytest's whole output is kept
