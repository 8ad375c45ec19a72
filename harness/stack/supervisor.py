"""Owning a stack beyond one command: `harness up` (foreground or detached) and `harness down`.

The owner of a stack is one harness process (the "supervisor"): `up` in the foreground is one, and
`up --detach` re-executes `up` as a background one and returns once it is ready. The owner records
itself in `<state>/owner.json` and the endpoints in `<state>/stack.json` (mode 0600: with them its
control channel's address and token, harness/control), acts on the stack for `harness fault` and
`harness recover restart-outbox` and logs each change to `<state>/fault_log.jsonl`; `down` sends it
SIGTERM, which ends every active fault, tears the stack down in order, and then reaps anything a crashed
owner left behind.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Callable

from harness.control.fault_log import FaultLog
from harness.control.owner import Owner
from harness.errors import NoStackRunning, StackAlreadyRunning, StackError, WaitTimeout
from harness.stack.config import StackConfig
from harness.stack.info import StackInfo
from harness.stack.janitor import install_signal_handlers, reap_leftovers
from harness.stack.local_stack import LocalStack, OnStarted
from harness.stack.paths import state_dir
from harness.stack.processes import group_alive, process_alive, start_ticks
from harness.stack.waiting import wait_until

__all__ = ["StateFiles", "detach", "down", "read_info", "running_info", "running_owner", "serve"]


@dataclass(frozen=True)
class StateFiles:
    root: Path

    @classmethod
    def default(cls) -> StateFiles:
        return cls(state_dir())

    @property
    def stack_json(self) -> Path:
        return self.root / "stack.json"

    @property
    def owner_json(self) -> Path:
        return self.root / "owner.json"

    @property
    def supervisor_log(self) -> Path:
        return self.root / "supervisor.log"

    @property
    def fault_log(self) -> Path:
        """Every fault and process change made through the owner (harness/control/fault_log.py)."""
        return self.root / "fault_log.jsonl"

    @property
    def pid_dir(self) -> Path:
        return self.root / "procs"


def _write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.touch(mode=0o600)  # stack.json holds the admin and control tokens
    tmp.write_text(text)
    tmp.replace(path)


def running_owner(files: StateFiles) -> int | None:
    """The pid of the live owner of a stack, or None (a stale owner.json counts as none)."""
    try:
        data = json.loads(files.owner_json.read_text())
        pid, ticks = int(data["pid"]), data.get("start_ticks")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return pid if process_alive(pid, ticks) else None


def read_info(files: StateFiles) -> StackInfo | None:
    try:
        return StackInfo.from_json(files.stack_json.read_text())
    except (OSError, ValueError, TypeError):
        return None


def running_info(files: StateFiles, start_with: str) -> StackInfo:
    """The endpoints of the stack whose owner runs; NoStackRunning ("no stack is up: start one with
    `start_with`") when there is none, or its stack.json is gone."""
    info = read_info(files)
    if info is None or running_owner(files) is None:
        raise NoStackRunning(f"no stack is up: start one with {start_with}")
    return info


def _refuse_if_running(files: StateFiles) -> None:
    owner = running_owner(files)
    if owner is not None:
        raise StackAlreadyRunning(f"a stack is already up (owner pid {owner}, endpoints in {files.stack_json});"
                                  " stop it with `harness down`")


def serve(config: StackConfig, files: StateFiles, on_ready: Callable[[StackInfo], None],
          on_started: OnStarted | None = None) -> None:
    """Own a stack in this process until SIGINT or SIGTERM, then tear it down; `on_started`: LocalStack's."""
    _refuse_if_running(files)
    reap_leftovers(files.pid_dir)  # a crashed earlier run may have left processes behind
    install_signal_handlers()
    me = os.getpid()
    _write_atomic(files.owner_json, json.dumps({"pid": me, "start_ticks": start_ticks(me)}))
    try:
        with LocalStack(config, on_started) as stack:
            def publish() -> StackInfo:
                info = replace(stack.current_info(), control_url=owner.server.url, control_token=owner.server.token)
                _write_atomic(files.stack_json, info.to_json())
                return info

            with Owner(stack, FaultLog(files.fault_log), on_change=publish) as owner:
                on_ready(publish())
                owner.run_forever()  # the user decides when: Ctrl-C or `harness down` (SIGTERM)
    except KeyboardInterrupt:
        pass  # the owner has ended its faults and the stack's context manager torn everything down
    finally:
        if running_owner(files) in (me, None):
            files.stack_json.unlink(missing_ok=True)
            files.owner_json.unlink(missing_ok=True)


def detach(up_args: list[str], files: StateFiles, timeout: float = 180.0) -> StackInfo:
    """Re-execute `harness up <up_args>` as a background owner; return once its stack is ready."""
    _refuse_if_running(files)
    files.root.mkdir(parents=True, exist_ok=True)
    with open(files.supervisor_log, "wb") as log:
        child = subprocess.Popen([sys.executable, "-m", "harness.cli", "up", *up_args], stdin=subprocess.DEVNULL,
                                 stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                                 env={**os.environ, "HARNESS_DETACHED": "1"})

    def ready() -> StackInfo | None:
        if child.poll() is not None:
            raise StackError(f"the background harness exited with {child.returncode}: {_last_line(files)}"
                             f" (full log: {files.supervisor_log})")
        info = read_info(files)
        return info if info is not None and info.owner_pid == child.pid else None

    try:
        return wait_until(ready, timeout, "the background harness to bring the stack up")
    except (WaitTimeout, KeyboardInterrupt):
        _terminate(child.pid, 30.0)
        raise


def _last_line(files: StateFiles) -> str:
    """The background harness's own error line if it printed one, else the log's last line."""
    try:
        lines = [ln.strip() for ln in files.supervisor_log.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    errors = [ln.removeprefix("harness: error:").strip() for ln in lines if ln.startswith("harness: error:")]
    return errors[-1] if errors else (lines[-1] if lines else "(empty log)")


def _terminate(pid: int, timeout: float) -> bool:
    """SIGTERM the owner and wait for its orderly teardown; SIGKILL its group if it hangs.

    Returns True when it had to be killed (its children are then reaped from its pid file).
    """
    try:
        os.kill(pid, signal.SIGTERM)
        wait_until(lambda: not process_alive(pid), timeout, f"harness owner {pid} to exit")
        return False
    except ProcessLookupError:
        return False
    except WaitTimeout:
        if group_alive(pid):
            os.killpg(pid, signal.SIGKILL)
        return True


def down(files: StateFiles, timeout: float = 30.0) -> list[str]:
    """Stop the stack's owner and reap leftovers; a list of what was done, for the user."""
    done: list[str] = []
    owner = running_owner(files)
    if owner is not None:
        killed = _terminate(owner, timeout)
        done.append(f"stopped the stack owned by pid {owner}" + (" (had to SIGKILL it)" if killed else ""))
        done += [f"killed leftover {g}" for g in reap_leftovers(files.pid_dir, owner_pid=owner)]
    done += [f"killed leftover {g}" for g in reap_leftovers(files.pid_dir)]
    files.stack_json.unlink(missing_ok=True)
    files.owner_json.unlink(missing_ok=True)
    if not done:
        raise NoStackRunning(f"nothing to stop: no stack owner in {files.owner_json} and no leftover processes")
    return done
