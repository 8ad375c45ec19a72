"""What the Docker tests share: the harness's containers as the engine lists them (none may be there
before a test, none left after it), and a pytest run in a child process, with a stack of its own, read
back from its JUnit file."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import docker
import pytest

from harness.report import read_junit
from harness.report.junit_results import CaseResult
from harness.stack.containers import OWNER_LABEL
from harness.stack.paths import repo_root


def harness_containers(owner: str | None = None) -> list[str]:
    """Names of the harness's containers (of one owner, `<pid>:<start ticks>`), running or not."""
    label = f"{OWNER_LABEL}={owner}" if owner else OWNER_LABEL
    client = docker.from_env()
    try:
        return [str(c.name) for c in client.containers.list(all=True, filters={"label": label})]
    finally:
        client.close()


@pytest.fixture(autouse=True)
def no_container_before() -> None:
    assert harness_containers() == [], "a harness container is already there: another run, or one left behind"


def run_pytest(args: list[str], folder: Path, timeout: float = 300,
               blank: tuple[str, ...] = ()) -> tuple[int, dict[str, CaseResult], str]:
    """pytest `args` in a child process, without this environment's `blank` variables: its exit code, each
    case's result by test name, the output's end."""
    junit = folder / "junit.xml"
    argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={junit}", *args]
    env = {k: v for k, v in os.environ.items() if k not in ("HARNESS_REPORT_DIR", *blank)}
    done = subprocess.run(argv, cwd=repo_root(), env=env, capture_output=True, text=True, timeout=timeout)
    cases = {case.nodeid.split("::")[-1]: case for case in (read_junit(junit) if junit.is_file() else [])}
    return done.returncode, cases, done.stdout[-3000:] + done.stderr[-3000:]
