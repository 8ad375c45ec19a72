"""`harness run`'s verdict is whole: an interrupted or partial run is `interrupted` (never a pass) and
`reports/latest` moves only when a run completes. Real pytest sessions on tiny suites, no stack."""
from __future__ import annotations

import json
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
