"""`--infra docker`: the stack's PostgreSQL and toxiproxy as containers (harness/stack/containers.py).
Real scenarios pass on them; a crash of PostgreSQL's container recovers its data; and no container is
left after a run, an orderly stop or a SIGKILLed harness. `pytest -m docker` selects the container tests alone."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import docker
import psycopg
import pytest

from harness.report import read_junit
from harness.stack import LocalStack, StackConfig
from harness.stack.containers import OWNER_LABEL
from harness.stack.paths import repo_root
from harness.stack.processes import start_ticks
from harness.stack.waiting import wait_until

pytestmark = [pytest.mark.docker, pytest.mark.tool("docker")]

SCENARIOS = ("scenarios/test_run_stuck.py",  # a paused outbox and queue worker, a seq gap
             "scenarios/test_conformance.py::test_postgres_restart_mid_run_loses_nothing",  # docker kill, start
             "scenarios/test_conformance.py::test_reset_peer_mid_stream_loses_and_duplicates_nothing")  # a toxic


def _containers(owner: str | None = None) -> list[str]:
    """Names of the harness's containers (of one owner, `<pid>:<start ticks>`), running or not."""
    label = f"{OWNER_LABEL}={owner}" if owner else OWNER_LABEL
    client = docker.from_env()
    try:
        return [str(c.name) for c in client.containers.list(all=True, filters={"label": label})]
    finally:
        client.close()


@pytest.fixture(autouse=True)
def _no_container_before() -> None:
    assert _containers() == [], "a harness container is already there: another run, or one left behind"


def test_scenarios_pass_on_containers_and_leave_none(tmp_path: Path) -> None:
    junit = tmp_path / "junit.xml"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--infra", "docker",
            f"--junitxml={junit}", *SCENARIOS]
    env = {k: v for k, v in os.environ.items() if k != "HARNESS_REPORT_DIR"}
    done = subprocess.run(argv, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=300)
    output = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, output
    verdicts = {case.nodeid: case.verdict for case in read_junit(junit)}
    assert len(verdicts) == 5 and set(verdicts.values()) == {"pass"}, (verdicts, output)
    assert _containers() == []


def test_a_crashed_postgres_container_recovers_its_data() -> None:
    with LocalStack(StackConfig(service=None).with_overrides(infra="docker")) as stack:
        assert stack.postgres is not None and len(_containers()) == 2
        with psycopg.connect(stack.info.dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)")
        stack.postgres.kill()
        assert not stack.process("postgres").running
        stack.heal()  # starts the same container again: crash recovery on its own data
        with psycopg.connect(stack.info.dsn, autocommit=True) as conn:
            assert conn.execute("SELECT n FROM kept").fetchall() == [(7,)]
        stack.process("toxiproxy").pause()
        stack.heal()
        assert not stack.process("toxiproxy").paused and stack.api is not None and stack.api.version()
    assert _containers() == []


CRASHING_HARNESS = """
from harness.stack import LocalStack, StackConfig
LocalStack(StackConfig(service=None).with_overrides(infra="docker")).start()
print("up", flush=True)
input()
"""


def test_a_sigkilled_harness_leaves_no_container() -> None:
    child = subprocess.Popen([sys.executable, "-c", CRASHING_HARNESS], cwd=repo_root(), stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None and child.stdout.readline().strip() == "up"
        owner = f"{child.pid}:{start_ticks(child.pid)}"
        assert len(_containers(owner)) == 2
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # The kernel kills each container's guard with the harness; the guard's watcher removes the container.
    wait_until(lambda: _containers(owner) == [], 15.0, "the SIGKILLed harness's containers to be removed")
