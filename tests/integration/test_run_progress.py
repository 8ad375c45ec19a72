"""`harness run` through a pipe, as a CI log gets it: each scenario's line arrives while pytest is still running
(before it wrote its JUnit), and a failure closes with its reason and the commands to run it again. Two
scenarios against a mutant that fails the first; one stack (~15 s)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from cli_helpers import mutant_service
from harness.suite_runner import PYTEST_JUNIT, REPO

pytestmark = [pytest.mark.tool("patch")]

# the first fails against cursor_off_by_one (the stream resends the event at the cursor); the second follows it
KEYWORD = "last_event_id_wins or cursor_at_or_past_the_terminal"


def test_each_scenario_is_told_as_it_ends_and_a_failure_closes_with_how_to_run_it_again(tmp_path: Path) -> None:
    env = {**os.environ, "HARNESS_SERVICE_DIR": str(mutant_service(tmp_path / "service")), "COLUMNS": "80"}
    proc = subprocess.Popen([sys.executable, "-m", "harness.cli", "run", "-s", "conformance", "-k", KEYWORD,
                             "--out", str(tmp_path / "reports")],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    lines: list[str] = []
    folder, junit_at_first = None, None
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.startswith("  report folder: "):
                folder = Path(line.split(": ", 1)[1].strip())
            if line.startswith("[1/2] ") and folder is not None:
                junit_at_first = (folder / PYTEST_JUNIT).exists()  # pytest writes it when its session ends
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    out = "\n".join(lines)
    assert code == 1, out
    assert junit_at_first is False, out  # the first scenario's line came while pytest still ran
    assert "\x1b[" not in out  # a pipe: no colour codes
    assert "collected 2 scenario(s)" in out
    started = [line.split(" up in ")[0] for line in lines if line.startswith("  stack: ")]
    assert started == ["  stack: postgres", "  stack: toxiproxy", "  stack: service (3 processes)"], out
    assert lines.index(next(line for line in lines if line.startswith("  stack ready in "))) < lines.index(
        next(line for line in lines if line.startswith("[1/2] "))), out
    first = next(line for line in lines if line.startswith("[1/2] "))
    assert first.startswith("[1/2] FAIL    conformance  last event id wins over from seq  "), out
    assert any(line.startswith("[2/2] ") for line in lines), out
    closing = lines[lines.index(next(line for line in lines if line.startswith("FAIL in "))):]
    assert closing[1].startswith("FAIL conformance  last event id wins over from seq: "), out
    assert closing[2].startswith("    replay: harness replay ") and closing[2].endswith(
        "--scenario 'test_last_event_id_wins_over_from_seq[asyncio]'"), out
    assert closing[3] == "    rerun:  harness run -s conformance -k test_last_event_id_wins_over_from_seq", out
    assert closing[-2] == f"report: {folder}/index.html", out  # one line, though longer than 80 columns
