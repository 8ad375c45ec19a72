"""ManagedProcess, the janitor and wait_until, on real `sleep` process groups."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

from harness.errors import ProcessError, WaitTimeout
from harness.stack.janitor import Janitor, reap_leftovers
from harness.stack.processes import ManagedProcess, ProcessSpec, process_alive, start_ticks
from harness.stack.waiting import wait_until

from stack_helpers import assert_gone, isolated_state_dir, kill_group_quietly  # noqa: F401 (autouse)

# A shell with a child: the child must die with the group, not just the leader.
FAMILY = ("sh", "-c", "sleep 60 & sleep 60; wait")


def proc_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def spec(tmp_path: Path, argv: tuple[str, ...] = FAMILY, **kw: Any) -> ProcessSpec:
    return ProcessSpec(name="family", argv=argv, log_path=tmp_path / "family.log", **kw)


def test_kill_takes_the_whole_group(tmp_path: Path) -> None:
    proc = ManagedProcess(spec(tmp_path)).start()
    assert proc.pid is not None and os.getpgid(proc.pid) == proc.pid  # its own group
    wait_until(lambda: len(os.popen(f"pgrep -g {proc.pid}").read().split()) >= 3, 5, "the children")
    proc.kill()
    assert_gone(proc.pid)
    assert not proc.running and proc.returncode == -signal.SIGKILL


def test_pause_and_resume_freeze_the_group(tmp_path: Path) -> None:
    proc = ManagedProcess(spec(tmp_path, ("sleep", "60"))).start()
    pid = proc.pid
    assert pid is not None
    try:
        proc.pause()
        wait_until(lambda: proc_state(pid) == "T", 2, "the stopped state")
        assert proc.paused and proc.running
        proc.resume()
        wait_until(lambda: proc_state(pid) == "S", 2, "the running state")
    finally:
        proc.kill()


def test_stop_escalates_to_sigkill(tmp_path: Path) -> None:
    stubborn = ("sh", "-c", "trap '' TERM; sleep 60 & wait; sleep 60")
    proc = ManagedProcess(spec(tmp_path, stubborn, stop_timeout=0.3)).start()
    assert proc.pid is not None
    time.sleep(0.1)  # let the shell install its trap
    started = time.monotonic()
    proc.stop()
    assert time.monotonic() - started < 3
    assert_gone(proc.pid)


def test_stop_of_a_paused_process(tmp_path: Path) -> None:
    proc = ManagedProcess(spec(tmp_path, ("sleep", "60"))).start()
    assert proc.pid is not None
    proc.pause()
    proc.stop(timeout=2)
    assert proc.returncode == -signal.SIGTERM  # continued, then terminated, not killed
    assert_gone(proc.pid)


def test_restart_appends_to_the_same_log(tmp_path: Path) -> None:
    proc = ManagedProcess(spec(tmp_path, ("sh", "-c", "echo started; sleep 60"))).start()
    first = proc.pid
    assert first is not None
    wait_until(lambda: "started" in proc.tail(), 2, "first output")
    proc.restart(crash=True)
    try:
        assert proc.pid != first and proc.running
        wait_until(lambda: proc.tail().count("started") == 2, 2, "second output")
    finally:
        proc.kill()
    assert_gone(first)


def test_missing_program_is_a_process_error(tmp_path: Path) -> None:
    with pytest.raises(ProcessError, match="could not start family"):
        ManagedProcess(spec(tmp_path, ("/nonexistent/program",))).start()


def test_janitor_stops_everything_and_removes_its_pid_file(tmp_path: Path) -> None:
    janitor = Janitor(tmp_path / "procs")
    janitor.track_dir(tmp_path / "scratch")
    (tmp_path / "scratch").mkdir()
    procs = [janitor.spawn(spec(tmp_path, ("sleep", "60"))) for _ in range(3)]
    pids = [p.pid for p in procs if p.pid is not None]
    assert len(pids) == len(procs)  # every one started
    data = json.loads(janitor.pid_file.read_text())
    assert sorted(g["pgid"] for g in data["groups"]) == sorted(pids)
    procs[0].kill()  # an exit is recorded too
    assert len(json.loads(janitor.pid_file.read_text())["groups"]) == 2
    janitor.stop_all()
    for pid in pids:
        assert_gone(pid)
    assert not janitor.pid_file.exists() and not (tmp_path / "scratch").exists()


def test_reap_leftovers_of_a_dead_owner(tmp_path: Path) -> None:
    dead_owner = _dead_pid()
    orphan = subprocess.Popen(["sleep", "60"], start_new_session=True)
    pid_dir = tmp_path / "procs"
    pid_dir.mkdir()
    scratch = tmp_path / "pgdata"
    scratch.mkdir()
    (pid_dir / f"{dead_owner}.json").write_text(json.dumps({
        "owner": {"name": "harness", "pgid": dead_owner, "start_ticks": 1},
        "groups": [{"name": "sleep", "pgid": orphan.pid, "start_ticks": start_ticks(orphan.pid)},
                   {"name": "reused", "pgid": os.getpid(), "start_ticks": 1}],  # pid reused: spared
        "dirs": [str(scratch)],
    }))
    try:
        assert reap_leftovers(pid_dir) == [f"sleep (pgid {orphan.pid})"]
        orphan.wait(2)
        assert not list(pid_dir.iterdir()) and not scratch.exists()
        assert process_alive(os.getpid())
    finally:
        kill_group_quietly(orphan.pid)


def test_reap_spares_live_owners(tmp_path: Path) -> None:
    janitor = Janitor(tmp_path / "procs")
    proc = janitor.spawn(spec(tmp_path, ("sleep", "60")))
    try:
        assert reap_leftovers(tmp_path / "procs") == []
        assert proc.running
    finally:
        janitor.stop_all()


def _dead_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


OWNER = textwrap.dedent("""
    import sys, time
    from pathlib import Path
    from harness.stack.janitor import get_janitor, install_signal_handlers
    from harness.stack.processes import ProcessSpec
    install_signal_handlers()
    proc = get_janitor().spawn(ProcessSpec("sleep", ("sleep", "60"), Path(sys.argv[1])))
    print(proc.pid, flush=True)
    try:
        time.sleep(60)
    except KeyboardInterrupt:
        print("interrupted", flush=True)
""")


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL])
def test_nothing_outlives_its_owner(tmp_path: Path, sig: int) -> None:
    """SIGTERM / SIGINT: the janitor tears down; SIGKILL: the kernel does (PR_SET_PDEATHSIG)."""
    owner = subprocess.Popen([sys.executable, "-c", OWNER, str(tmp_path / "sleep.log")],
                             stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert owner.stdout is not None
    child = int(owner.stdout.readline())
    try:
        owner.send_signal(sig)
        owner.wait(10)
        wait_until(lambda: not process_alive(child), 5, "the child to die with its owner")
    finally:
        kill_group_quietly(child)
    assert_gone(child)


def test_wait_until_returns_the_value_and_counts_attempts() -> None:
    calls = iter([0, 0, "ready"])
    assert wait_until(lambda: next(calls), 2, "a value") == "ready"
    with pytest.raises(WaitTimeout, match=r"attempts waiting for nothing; last error: ValueError") as info:
        wait_until(lambda: int("x"), 0.2, "nothing")
    assert info.value.attempts > 1
