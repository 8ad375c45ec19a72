"""Gating an implementation the harness has never seen, through its target profile: `check-profile` names
each problem of a misdescribed target in one line; the Node.js implementation (tests/targets/node_impl,
no failpoints, its own environment and logfmt lines) passes the applicable scenarios, with the others
reported not applicable; and each of its switchable defects is caught by the scenario meant for it."""
from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from harness.report import read_junit
from harness.stack import StackConfig
from harness.stack.paths import repo_root
from harness.target import load_profile, reference_profile
from harness.target.check import check_profile
from harness.target.profile import TargetProfile

NODE_PROFILE = repo_root() / "tests" / "targets" / "node_impl" / "profile.toml"
SUITE_TIMEOUT_S = 300


def _problems(profile: TargetProfile) -> dict[str, str]:
    return {f.probe: f.detail for f in check_profile(profile, StackConfig()) if not f.ok}


def _with_env(profile: TargetProfile, role: str, **env: str) -> TargetProfile:
    processes = tuple(dataclasses.replace(p, env={**p.env, **env}) if p.role == role else p
                      for p in profile.processes)
    return dataclasses.replace(profile, processes=processes)


@pytest.mark.tool("node")
def test_check_profile_passes_on_the_node_target() -> None:
    assert _problems(load_profile(NODE_PROFILE)) == {}


def test_check_profile_names_a_wrong_stream_path() -> None:
    problems = _problems(dataclasses.replace(reference_profile(), stream_path="/api/runs/{run_id}/events"))
    assert set(problems) == {"stream", "heartbeat"} and "stream_path" in problems["stream"], problems
    assert all("answered 404" in detail for detail in problems.values()), problems


def test_check_profile_names_a_wrong_dsn() -> None:
    problems = _problems(_with_env(reference_profile(), "api", DATABASE_URL="postgresql://nobody@127.0.0.1:9/none"))
    assert set(problems) == {"processes"} and "did not start" in problems["processes"], problems


def test_check_profile_names_a_missing_index() -> None:
    # The target's own migration, minus the runbook's backfill index.
    drop = ("import os, subprocess, sys, psycopg; subprocess.run([sys.executable, '-m', 'reference_impl', 'migrate'],"
            " check=True); psycopg.connect(os.environ['DATABASE_URL'], autocommit=True).execute("
            "'DROP INDEX run_events_runid_publishedat_idx')")
    profile = reference_profile()
    processes = tuple(dataclasses.replace(p, command=("{python}", "-c", drop)) if p.role == "migrate" else p
                      for p in profile.processes)
    problems = _problems(dataclasses.replace(profile, processes=processes))
    assert set(problems) == {"schema"} and "run_events" in problems["schema"] and "publishedat" in problems["schema"]


def _suite(tmp_path: Path, args: list[str], defect: str | None = None) -> tuple[int, list[tuple[str, str, str]]]:
    """pytest on the node target in a child process: its exit code and each case's (name, verdict, message)."""
    junit = tmp_path / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k not in ("NODE_IMPL_DEFECT", "HARNESS_REPORT_DIR")}
    if defect:
        env["NODE_IMPL_DEFECT"] = defect  # the processes inherit the harness's environment
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--target", str(NODE_PROFILE),
                           f"--junitxml={junit}", *args], cwd=repo_root(), env=env, capture_output=True, text=True,
                          timeout=SUITE_TIMEOUT_S)
    assert junit.is_file(), done.stdout[-3000:] + done.stderr[-3000:]
    return done.returncode, [(c.nodeid.split("::")[-1], c.verdict, c.message) for c in read_junit(junit)]


@pytest.mark.tool("node")
def test_the_node_target_passes_the_applicable_scenarios(tmp_path: Path) -> None:
    code, cases = _suite(tmp_path, ["scenarios/test_conformance.py", "scenarios/test_run_stuck.py"])
    verdicts = {verdict for _, verdict, _ in cases}
    assert code == 0 and verdicts == {"pass", "not_applicable"}, [c for c in cases if c[1] != "pass"]
    not_applicable = {name: message for name, verdict, message in cases if verdict == "not_applicable"}
    assert any(name.startswith("test_crash_between_publish_and_mark") for name in not_applicable), not_applicable
    assert all("target node_impl lacks failpoints" in message for message in not_applicable.values()), not_applicable


@pytest.mark.tool("node")
@pytest.mark.parametrize(("defect", "scenario", "caught"), [
    ("200_after_terminal", "scenarios/test_conformance.py::test_a_cursor_at_or_past_the_terminal_event_gets_204",
     "204"),
    ("no_dedupe", "scenarios/test_rebuild_stream.py", "exactly_once: False|resumed from"),
    ("backfill_unpublished", "scenarios/test_run_stuck.py::test_a_seq_gap_stops_the_outbox_at_the_gap_and_alerts",
     "a client received past the gap"),
])
def test_each_defect_of_the_node_target_is_caught(tmp_path: Path, defect: str, scenario: str, caught: str) -> None:
    code, cases = _suite(tmp_path, [scenario], defect)
    failed = [message for _, verdict, message in cases if verdict == "fail"]
    assert code == 1 and failed, cases
    assert any(re.search(caught, message) for message in failed), failed
