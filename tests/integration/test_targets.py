"""Gating an implementation the harness has never seen, through its target profile: `check-profile` names
each problem of a misdescribed target in one line; the Node.js implementation (tests/targets/node_impl,
no failpoints, its own environment and logfmt lines) passes the applicable scenarios, with the others
reported not applicable and a crash failpoint replaced by the nearest real fault; the same implementation
as one `all` process (profile-all.toml) too, with what needs separate roles not applicable; and each of
its switchable defects is caught by the scenario meant for it."""
from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.report import read_junit
from harness.stack import StackConfig
from harness.stack.paths import repo_root
from harness.target import load_profile, reference_profile
from harness.target.check import check_profile
from harness.target.profile import TargetProfile

NODE_PROFILE = repo_root() / "tests" / "targets" / "node_impl" / "profile.toml"
NODE_ALL_PROFILE = NODE_PROFILE.with_name("profile-all.toml")
SUITE_TIMEOUT_S = 300


def _problems(profile: TargetProfile, ready_timeout: float = 30.0) -> dict[str, str]:
    config = StackConfig().with_overrides(ready_timeout=ready_timeout)
    return {f.probe: f.detail for f in check_profile(profile, config) if not f.ok}


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
    # A service that cannot reach its database never becomes ready: 5 s of waiting shows it as well as 30.
    problems = _problems(_with_env(reference_profile(), "api", DATABASE_URL="postgresql://nobody@127.0.0.1:9/none"),
                         ready_timeout=5)
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


@dataclass(frozen=True)
class SuiteRun:
    name: str
    args: tuple[str, ...]
    defect: str | None = None
    profile: Path = NODE_PROFILE


@dataclass(frozen=True)
class SuiteResult:
    code: int
    cases: tuple[tuple[str, str, str], ...]  # (test name, verdict, message)
    output: str
    properties: dict[str, dict[str, str]]  # test name -> its JUnit properties


CRASH = "test_crash_between_publish_and_mark_republishes_without_duplicate_delivery"
APPLICABLE = SuiteRun("applicable", ("scenarios/test_conformance.py", "scenarios/test_run_stuck.py"))
# One `all` process: a few scenarios that apply, two that fault one role alone (a paused outbox worker, a
# slowed `pg_outbox` link) and so need separate roles, and the crash between publish and mark replaced.
ALL_IN_ONE = SuiteRun("all", (
    "scenarios/test_conformance.py::test_a_run_streams_started_to_finished_in_order",
    "scenarios/test_conformance.py::test_a_cursor_at_or_past_the_terminal_event_gets_204",
    f"scenarios/test_conformance.py::{CRASH}",
    "scenarios/test_run_stuck.py::test_held_outbox_delivers_nothing_new_then_catches_up_exactly_once",
    "scenarios/test_outbox_lag.py::test_pg_outbox_latency_moves_lag_to_warning_then_critical_and_back",
), profile=NODE_ALL_PROFILE)
DEFECTS = {  # defect -> (the scenario meant to catch it, what its failure says)
    "200_after_terminal": ("scenarios/test_conformance.py::test_a_cursor_at_or_past_the_terminal_event_gets_204",
                           "204"),
    "no_dedupe": ("scenarios/test_rebuild_stream.py", "exactly_once: False|resumed from"),
    "backfill_unpublished": ("scenarios/test_run_stuck.py::test_a_seq_gap_stops_the_outbox_at_the_gap_and_alerts",
                             "a client received past the gap"),
}


def _suite(folder: Path, run: SuiteRun) -> SuiteResult:
    """pytest on the node target in a child process: its exit code and each case's verdict."""
    folder.mkdir(parents=True, exist_ok=True)
    junit = folder / "junit.xml"
    env = {k: v for k, v in os.environ.items() if k != "NODE_IMPL_DEFECT"}
    env["HARNESS_REPORT_DIR"] = str(folder / "report")  # each scenario's history and checks.json, here
    if run.defect:
        env["NODE_IMPL_DEFECT"] = run.defect  # the processes inherit the harness's environment
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--target", str(run.profile),
            f"--junitxml={junit}", *run.args]
    done = subprocess.run(argv, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=SUITE_TIMEOUT_S)
    found = read_junit(junit) if junit.is_file() else []
    cases = tuple((c.nodeid.split("::")[-1], str(c.verdict), c.message) for c in found)
    return SuiteResult(done.returncode, cases, done.stdout[-3000:] + done.stderr[-3000:],
                       {c.nodeid.split("::")[-1]: c.properties for c in found})


@pytest.fixture(scope="module")
def node_suites(tmp_path_factory: pytest.TempPathFactory) -> dict[str, SuiteResult]:
    """The applicable runs and one run per defect, three at a time (each child has a stack of its own, and
    spends much of its time waiting on the target: two at a time left the cores half idle)."""
    runs = [APPLICABLE, ALL_IN_ONE, *(SuiteRun(defect, (scenario,), defect) for defect, (scenario, _) in DEFECTS.items())]
    root = tmp_path_factory.mktemp("node-suites")
    with ThreadPoolExecutor(max_workers=3) as pool:
        results = list(pool.map(lambda run: _suite(root / run.name, run), runs))
    return {run.name: result for run, result in zip(runs, results)}


def _stand_in(result: SuiteResult, test: str) -> tuple[str, list[dict[str, Any]]]:
    """The test's `stand_in` JUnit property and the replacing kill windows of its history (checks.json)."""
    properties = next(props for name, props in result.properties.items() if name.startswith(test))
    faults = json.loads(Path(properties["checks_file"]).read_text())["faults"]
    return properties.get("stand_in", ""), [f for f in faults if "replaces" in f["params"]]


@pytest.mark.tool("node")
def test_the_node_target_passes_the_applicable_scenarios(node_suites: dict[str, SuiteResult]) -> None:
    result = node_suites["applicable"]
    verdicts = {verdict for _, verdict, _ in result.cases}
    assert result.code == 0 and verdicts <= {"pass", "not_applicable"}, \
        [c for c in result.cases if c[1] != "pass"] or result.output
    not_applicable = {name: message for name, verdict, message in result.cases if verdict == "not_applicable"}
    assert all("target node_impl lacks failpoints" in message for message in not_applicable.values()), not_applicable
    # No failpoints: the crash between publish and mark ran as a SIGKILL of the outbox worker mid-stream.
    note, [kill] = _stand_in(result, CRASH)
    assert note == "kill outbox-worker-0 replaces failpoint:outbox.after_publish=1*crash", note
    assert kill["name"] == "kill" and kill["target"] == "outbox-worker-0" and kill["params"]["killed_at"], kill


@pytest.mark.tool("node")
def test_the_node_target_as_one_process_passes_what_applies(node_suites: dict[str, SuiteResult]) -> None:
    result = node_suites["all"]
    verdicts = {name: verdict for name, verdict, _ in result.cases}
    assert result.code == 0 and set(verdicts.values()) == {"pass", "not_applicable"}, result.cases or result.output
    not_applicable = {name.split("[")[0]: message for name, verdict, message in result.cases
                      if verdict == "not_applicable"}
    assert set(not_applicable) == {"test_held_outbox_delivers_nothing_new_then_catches_up_exactly_once",
                                   "test_pg_outbox_latency_moves_lag_to_warning_then_critical_and_back"}, not_applicable
    assert all("target node_impl_all lacks separate_roles" in m for m in not_applicable.values()), not_applicable
    # The crash hit the one process doing the outbox's work, and the history and the report say so.
    note, [kill] = _stand_in(result, CRASH)
    assert note == "kill all-0 (for outbox-worker-0) replaces failpoint:outbox.after_publish=1*crash", note
    assert kill["target"] == "all-0" and kill["params"]["for"] == "outbox-worker-0" and kill["params"]["killed_at"]
    assert next(v for name, v in verdicts.items() if name.startswith(CRASH)) == "pass", verdicts


@pytest.mark.tool("node")
@pytest.mark.parametrize("defect", sorted(DEFECTS))
def test_each_defect_of_the_node_target_is_caught(node_suites: dict[str, SuiteResult], defect: str) -> None:
    result = node_suites[defect]
    failed = [message for _, verdict, message in result.cases if verdict == "fail"]
    assert result.code == 1 and failed, result.cases or result.output
    assert any(re.search(DEFECTS[defect][1], message) for message in failed), failed
