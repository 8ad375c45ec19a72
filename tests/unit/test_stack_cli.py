"""`harness up / down / status` as a user runs them: one-line errors, detach, nothing left behind."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from harness.stack.processes import process_alive

from stack_helpers import FAKE_SERVICE, assert_gone, isolated_state_dir  # noqa: F401 (autouse)


def harness(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], capture_output=True, text=True,
                          timeout=timeout, env={**os.environ, "COLUMNS": "200"})


def test_down_with_nothing_running_is_one_line() -> None:
    result = harness("down")
    assert result.returncode == 1
    assert result.stderr.strip().startswith("harness: error: nothing to stop")
    assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


def test_bad_option_is_a_usage_error() -> None:
    result = harness("up", "--nginx", "sometimes")
    assert result.returncode == 2 and "Traceback" not in result.stderr


def test_bad_env_pair_is_one_line() -> None:
    result = harness("up", "--env", "NOEQUALS")
    assert result.returncode == 2
    assert result.stderr.strip() == "harness: error: --env expects KEY=VALUE, got 'NOEQUALS'"


def test_status_without_stack() -> None:
    assert harness("status").returncode == 1


def test_detach_then_down_leaves_nothing(isolated_state_dir: Path) -> None:
    up = harness("up", "--detach", "--nginx", "on", "--api-replicas", "2", "--fast",
                 "--service-command", f"{sys.executable} {FAKE_SERVICE}")
    assert up.returncode == 0, up.stderr + up.stdout
    info = json.loads((isolated_state_dir / "stack.json").read_text())
    for key in ("api_url", "api_direct_url", "dsn", "toxiproxy_url", "logs_dir"):
        assert info[key]
    assert len(info["api_direct_urls"]) == 2 and info["nginx_url"]
    owner = info["owner_pid"]
    pids = [p["pid"] for p in info["processes"]]
    assert process_alive(owner) and all(process_alive(pid) for pid in pids)

    again = harness("up", "--no-service")
    assert again.returncode == 2 and "already up" in again.stderr

    down = harness("down")
    assert down.returncode == 0, down.stderr
    assert f"stopped the stack owned by pid {owner}" in down.stdout
    for pid in [owner, *pids]:
        assert_gone(pid)
    assert not (isolated_state_dir / "stack.json").exists()
    assert not list((isolated_state_dir / "procs").glob("*.json"))


def test_failed_detached_start_reports_the_cause(isolated_state_dir: Path) -> None:
    result = harness("up", "--detach", "--service-command", f"{sys.executable} {FAKE_SERVICE}",
                     "--env", "FAKE_MIGRATE_FAIL=1")
    assert result.returncode == 2
    assert "background harness exited with 2" in result.stderr and "migrate" in result.stderr
    assert not (isolated_state_dir / "stack.json").exists()
