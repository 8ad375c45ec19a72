"""`harness replay` on a real report: a scenario a mutant fails reproduces when replayed against the
mutant, and does not against the correct service. Three short pytest runs, each with its own stack."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from html import escape
from pathlib import Path

import pytest

from cli_helpers import MUTANT_NODEID as NODEID, MUTANT_SCENARIO as SCENARIO, mutant_service
from harness.suite_runner import REPO, RunRequest, run_suites

pytestmark = [pytest.mark.tool("patch")]


def _replay(report: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_SERVICE_DIR"}
    return subprocess.run([sys.executable, "-m", "harness.cli", "replay", str(report), "--scenario", SCENARIO],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=240)


def test_a_mutant_failure_reproduces_and_not_against_the_correct_service(tmp_path: Path) -> None:
    service = mutant_service(tmp_path / "service")
    summary, report = run_suites(RunRequest(reports_root=tmp_path / "reports", nodeids=(NODEID,),
                                            pytest_args=("--service-dir", str(service))))
    assert summary["verdict"] == "fail", summary
    command = summary["scenarios"][0]["replay"]
    assert command.endswith(f"--scenario '{SCENARIO}'") and escape(command) in (report / "index.html").read_text()

    again = _replay(report)
    assert again.returncode == 0 and "reproduced 1 of 1" in again.stdout, again.stdout + again.stderr
    replays = list(report.glob("replay-*/run-1/summary.json"))
    assert len(replays) == 1 and json.loads(replays[0].read_text())["verdict"] == "fail"

    # The same report pointed at the correct service: its reproduction without the mutant's directory.
    fixed = tmp_path / "fixed"
    shutil.copytree(report, fixed, symlinks=True)
    (file,) = fixed.glob("scenarios/*/reproduction.json")
    data = json.loads(file.read_text())
    assert data["options"]["service_dir"] == str(service.resolve()) and data["nodeid"] == NODEID
    del data["options"]["service_dir"]
    file.write_text(json.dumps(data))
    correct = _replay(fixed)
    assert correct.returncode == 1 and "did not reproduce (0 of 1)" in correct.stdout, correct.stdout + correct.stderr
