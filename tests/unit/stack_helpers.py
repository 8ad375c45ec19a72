"""Helpers shared by the stack's unit tests (a plain module, not a conftest: tests/unit is shared).

Import `isolated_state_dir` into a test module to give each test its own HARNESS_STATE_DIR.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.stack.processes import group_alive, group_members, process_alive


@pytest.fixture(autouse=True)
def isolated_state_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Each test's pid files and stack.json live in its own tmp dir, never in the repo's .harness."""
    state = tmp_path / "state"
    monkeypatch.setenv("HARNESS_STATE_DIR", str(state))
    yield state


def assert_gone(pid: int) -> None:
    """Neither the process nor anything in its process group is left (zombies aside)."""
    assert not process_alive(pid), f"process {pid} is still running"
    assert not group_members(pid), f"process group {pid} still has live members {group_members(pid)}"


def kill_group_quietly(pgid: int) -> None:
    if group_alive(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass


FAKE_SERVICE = Path(__file__).with_name("stack_fake_service.py")
