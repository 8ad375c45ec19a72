"""One real child process, owned in its own process group.

Every signal goes to the whole group (`killpg`), so a process's own children (PostgreSQL backends,
nginx workers, a uvicorn reloader) share its fate: SIGKILL is a crash of the component, SIGSTOP
freezes it as a whole, and nothing survives a stop. stdout and stderr go to one log file that is
appended to across restarts, so the history of a component stays in one place.
"""

from __future__ import annotations

import ctypes
import os
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Callable, Mapping

from harness.errors import ProcessError, WaitTimeout
from harness.stack.waiting import wait_until

__all__ = ["ManagedProcess", "ProcessSpec", "group_alive", "group_members", "process_alive", "start_ticks"]

_PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ProcessSpec:
    """What to run and how; restarts reuse it unchanged (same argv, env, port)."""

    name: str
    argv: tuple[str, ...]
    log_path: Path
    env: Mapping[str, str] | None = None  # the full environment; None inherits the harness's
    cwd: Path | None = None
    user: str | None = None  # run as this system user (needs root): PostgreSQL refuses root
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 10.0
    extra: Mapping[str, str] = field(default_factory=dict)  # free-form facts for StackInfo (url, role)


def start_ticks(pid: int) -> int | None:
    """Start time of `pid` in clock ticks since boot, or None if it is gone.

    A pid can be reused by an unrelated program after ours died; the pair (pid, start time) cannot,
    so the janitor compares both before it kills anything recorded in a pid file.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may contain spaces and parentheses: split after its last ')'.
    fields = stat.rsplit(")", 1)[1].split()
    return int(fields[19])


def process_alive(pid: int, ticks: int | None = None) -> bool:
    """True when `pid` runs (a zombie is dead) and, if `ticks` is given, is the process recorded."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    fields = stat.rsplit(")", 1)[1].split()
    return fields[0] not in ("Z", "X") and (ticks is None or int(fields[19]) == ticks)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes in the process group.

    Zombies do not count: once their parent is gone they wait for PID 1 to reap them, which can
    take seconds in a container, and they hold nothing (no port, no memory, no lock).
    """
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            fields = Path(entry.path, "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # exited while we looked
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def group_alive(pgid: int) -> bool:
    """True while any live process is left in the process group."""
    return bool(group_members(pgid))


def _die_with_parent_hook() -> Callable[[], None] | None:
    """A pre-exec hook asking the kernel to SIGKILL the child when the harness dies.

    It covers the one case atexit and signal handlers cannot: the harness itself SIGKILLed. The
    kernel ties it to the *thread* that forked, so it is only used from the main thread (a worker
    thread exiting would otherwise kill the stack). libc is resolved here, before the fork.
    """
    if threading.current_thread() is not threading.main_thread():
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None

    def hook() -> None:
        prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)

    return hook


class ManagedProcess:
    """A started (or startable) child process and the signals the nemesis needs."""

    def __init__(self, spec: ProcessSpec, on_start: Callable[[ManagedProcess], None] | None = None,
                 on_exit: Callable[[ManagedProcess], None] | None = None) -> None:
        self.spec = spec
        self._popen: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._started_mono: float | None = None
        self._on_start = on_start
        self._on_exit = on_exit
        self.start_ticks: int | None = None

    def __repr__(self) -> str:
        return f"<ManagedProcess {self.spec.name} pid={self.pid} running={self.running}>"

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def paused(self) -> bool:
        return self._paused

    @property
    def running(self) -> bool:
        """True while the group leader has not exited (a paused process is running)."""
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def uptime(self) -> float:
        """Seconds since the last start (0 when never started)."""
        return 0.0 if self._started_mono is None else time.monotonic() - self._started_mono

    def start(self) -> ManagedProcess:
        if self.running:
            raise ProcessError(f"{self.name} is already running (pid {self.pid})")
        self.spec.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.spec.log_path, "ab") as log:
            self._popen = self._spawn(log)
        self._paused = False
        self._started_mono = time.monotonic()
        self.start_ticks = start_ticks(self._popen.pid)
        if self._on_start:
            self._on_start(self)
        return self

    def _spawn(self, log: IO[bytes]) -> subprocess.Popen[bytes]:
        try:
            return subprocess.Popen(
                list(self.spec.argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(self.spec.env) if self.spec.env is not None else None,
                cwd=self.spec.cwd,
                user=self.spec.user,
                group=self.spec.user,
                extra_groups=[] if self.spec.user else None,
                start_new_session=True,  # own process group: signals reach its children too
                preexec_fn=_die_with_parent_hook(),
            )
        except (OSError, subprocess.SubprocessError, KeyError) as exc:
            raise ProcessError(
                f"could not start {self.name}: {' '.join(self.spec.argv)}: {exc}"
                f" (is the program installed and executable?)"
            ) from exc

    def signal(self, sig: int) -> None:
        """Send `sig` to the whole process group."""
        if self._popen is None:
            raise ProcessError(f"{self.name} was never started")
        try:
            os.killpg(self._popen.pid, sig)
        except ProcessLookupError:
            pass  # already gone: nothing to signal
        except PermissionError as exc:
            raise ProcessError(f"not allowed to signal {self.name} (pgid {self._popen.pid})") from exc

    def pause(self) -> None:
        """Freeze the group (SIGSTOP): connections stay open, nothing answers."""
        self.signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        self.signal(signal.SIGCONT)
        self._paused = False

    def kill(self, timeout: float = 5.0) -> None:
        """Crash the component: SIGKILL to the group, then wait until the group is empty."""
        if self._popen is None:
            return
        self.signal(signal.SIGKILL)
        self._reap(timeout)

    def terminate(self) -> None:
        """Ask the process to stop (its stop signal) without waiting; `stop()` then waits."""
        if self.running:
            if self._paused:
                self.resume()  # a stopped process would not act on SIGTERM until continued
            self.signal(self.spec.stop_signal)

    def stop(self, timeout: float | None = None) -> None:
        """Graceful stop: the stop signal, then SIGKILL once `timeout` has passed."""
        if self._popen is None:
            return
        self.terminate()
        try:
            self._popen.wait(timeout if timeout is not None else self.spec.stop_timeout)
        except subprocess.TimeoutExpired:
            pass
        # SIGKILL whatever is left, leader or stragglers that ignored the signal.
        self.kill()

    def restart(self, *, crash: bool = False) -> ManagedProcess:
        """Stop (or crash, with SIGKILL) and start again with the same spec."""
        self.kill() if crash else self.stop()
        return self.start()

    def _reap(self, timeout: float) -> None:
        assert self._popen is not None
        pgid = self._popen.pid
        try:
            self._popen.wait(timeout)
            wait_until(lambda: not group_alive(pgid), timeout, f"process group of {self.name} to exit")
        except (subprocess.TimeoutExpired, WaitTimeout) as exc:
            raise ProcessError(f"{self.name} (pgid {pgid}) survived SIGKILL for {timeout}s") from exc
        self._paused = False
        if self._on_exit:
            self._on_exit(self)

    def tail(self, lines: int = 20) -> str:
        """The last lines of the log, for error messages."""
        try:
            data = self.spec.log_path.read_bytes()[-8192:]
        except OSError:
            return ""
        return "\n".join(data.decode(errors="replace").splitlines()[-lines:])

    def wait_exit(self, timeout: float) -> int:
        """Wait for a process that is expected to exit on its own (a one-off command)."""
        if self._popen is None:
            raise ProcessError(f"{self.name} was never started")
        try:
            code = self._popen.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            self.kill()
            raise ProcessError(f"{self.name} did not exit within {timeout}s; killed it") from exc
        self.kill(timeout=1.0)  # reap any child it left behind in its group
        return code


