"""`--infra docker`: the stack's PostgreSQL and toxiproxy as containers (harness/stack/containers.py).
Real scenarios pass on them; a crash of PostgreSQL's container recovers its data; and no container is
left after a run, an orderly stop or a SIGKILLed harness. `pytest -m docker` selects the container tests alone."""
from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from harness.stack import LocalStack, StackConfig
from harness.stack.paths import repo_root
from harness.stack.processes import start_ticks
from harness.stack.waiting import wait_until

from docker_helpers import harness_containers, no_container_before, run_pytest  # noqa: F401 (autouse)

pytestmark = [pytest.mark.docker, pytest.mark.tool("docker")]

SCENARIOS = ("scenarios/test_run_stuck.py",  # a paused outbox and queue worker, a seq gap
             "scenarios/test_conformance.py::test_postgres_restart_mid_run_loses_nothing",  # docker kill, start
             "scenarios/test_conformance.py::test_reset_peer_mid_stream_loses_and_duplicates_nothing")  # a toxic


def test_scenarios_pass_on_containers_and_leave_none(tmp_path: Path) -> None:
    code, cases, output = run_pytest(["--infra", "docker", *SCENARIOS], tmp_path)
    assert code == 0, output
    verdicts = {name: case.verdict for name, case in cases.items()}
    assert len(verdicts) == 5 and set(verdicts.values()) == {"pass"}, (verdicts, output)
    assert harness_containers() == []


def test_a_crashed_postgres_container_recovers_its_data() -> None:
    with LocalStack(StackConfig(service=None).with_overrides(infra="docker")) as stack:
        assert stack.postgres is not None and len(harness_containers()) == 2
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
    assert harness_containers() == []


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
        assert len(harness_containers(owner)) == 2
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
    # The kernel kills each container's guard with the harness; the guard's watcher removes the container.
    wait_until(lambda: harness_containers(owner) == [], 15.0, "the SIGKILLed harness's containers to be removed")
