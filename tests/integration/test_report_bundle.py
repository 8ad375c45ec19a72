"""`harness run`'s post-mortem bundle and CI outputs on a real run: a runbook scenario ("Run Stuck") failed
by a mutant leaves the stack's logs, its slice of them, the runbook's diagnose and alerts at its teardown,
a JUnit CI reads and the Markdown summary, also appended to GITHUB_STEP_SUMMARY. One short run (~15 s)."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from harness.mutants import MUTANTS_DIR, apply_mutant, parse_mutant
from cli_helpers import run_harness

pytestmark = [pytest.mark.tool("patch")]

SCENARIO = "test_a_seq_gap_stops_the_outbox_at_the_gap_and_alerts"  # outbox_skips_missing_seq publishes past the gap


def test_a_failed_runbook_scenario_leaves_its_logs_and_the_runbook_view_of_its_stack(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    service = apply_mutant(parse_mutant(MUTANTS_DIR / "outbox_skips_missing_seq.patch"), tmp_path / "service")
    monkeypatch.setenv("HARNESS_SERVICE_DIR", str(service))
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(tmp_path / "step.md"))
    done = run_harness(tmp_path / "state", "run", "--suite", "run_stuck", "-k", SCENARIO, "--out",
                       str(tmp_path / "reports"), "--summary-md", str(tmp_path / "summary.md"))
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    report = (tmp_path / "reports" / "latest").resolve()
    summary = json.loads((report / "summary.json").read_text())
    assert summary["schema_version"] == 1 and summary["verdict"] == "fail"
    assert summary["configuration"]["stack"]["service_dir"] == str(service.resolve())
    (scenario,) = summary["scenarios"]
    assert scenario["runbook_section"] == '"Run Stuck" Diagnostic Checklist' and scenario["name"] == SCENARIO

    assert {"api-0.log", "outbox-worker-0.log", "postgres.log"} <= {p.name for p in (report / "logs" / "stack").iterdir()}
    files = scenario["artefacts"]
    assert not any(Path(path).is_absolute() for path in files.values())
    service_log = (report / files["service_log"]).read_text()
    assert "==> logs/stack/outbox-worker-0.log <==" in service_log and '"msg": "start-run"' in service_log
    diagnosis = json.loads((report / files["diagnose"]).read_text())
    (run,) = diagnosis["runs"]  # the test's one run, as the checklist sees it once the mutant moved past the gap
    assert run["verdict"] == "finished" and run["evidence"]["nextSeq"] == 11, run
    alerts = json.loads((report / files["alerts"]).read_text())
    assert alerts["firing"] == [] and {a["name"] for a in alerts["alerts"]} == {"run_stall", "outbox_backlog",
                                                                               "high_lag", "sse_churn"}

    junit = ET.parse(report / "junit.xml").getroot()
    (suite,) = junit.iter("testsuite")
    (case,) = suite.iter("testcase")
    assert (suite.get("name"), suite.get("failures"), case.get("name")) == ("run_stuck", "1", SCENARIO)
    props = {p.get("name"): p.get("value") for p in case.iter("property")}
    assert props["artefact.diagnose"] == files["diagnose"] and str(props["reproduce"]).startswith("harness replay")
    markdown = (tmp_path / "summary.md").read_text()
    assert "a client received past the gap" in markdown and (tmp_path / "step.md").read_text() == markdown
