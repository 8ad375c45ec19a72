"""`--infra docker` without an engine: the setting, the owner labels, and the one line that says how to get one."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from harness.errors import ConfigError
from harness.stack import StackConfig
from harness.stack.containers import SETUP_HINT, docker_problem, owner_gone, owner_value

from stack_helpers import isolated_state_dir  # noqa: F401 (autouse)

NO_ENGINE = "unix:///nonexistent/docker.sock"


def test_infra_is_local_by_default_and_read_from_the_environment() -> None:
    assert StackConfig().infra == "local"
    assert StackConfig.from_env({"HARNESS_INFRA": "docker"}).infra == "docker"
    assert StackConfig.from_env({"HARNESS_INFRA": "docker"}, infra="local").infra == "local"
    with pytest.raises(ConfigError, match=r"infra must be one of \['local', 'docker'\], got 'podman'"):
        StackConfig().with_overrides(infra="podman")


def test_an_owner_label_names_a_live_harness_until_it_is_gone() -> None:
    assert not owner_gone(owner_value())
    pid, ticks = owner_value().split(":")
    assert owner_gone(f"{pid}:{int(ticks) + 1}")  # the same pid, another process: reused
    child = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    assert owner_gone(f"{child.stdout.strip()}:1")
    assert owner_gone("garbage")


def test_no_engine_is_one_line_saying_how_to_get_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", NO_ENGINE)
    problem = docker_problem()
    assert problem is not None and problem.startswith("no Docker engine answers") and problem.endswith(SETUP_HINT)


def test_harness_up_with_no_engine_exits_2_with_that_line() -> None:
    result = subprocess.run([sys.executable, "-m", "harness.cli", "up", "--infra", "docker", "--no-service"],
                            capture_output=True, text=True, timeout=60,
                            env={**os.environ, "DOCKER_HOST": NO_ENGINE, "COLUMNS": "300"})
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines() == [
        f"harness: error: --infra docker: no Docker engine answers (DockerException); start one and build the"
        f" images: {SETUP_HINT}"], result.stderr
