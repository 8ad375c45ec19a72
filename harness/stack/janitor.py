"""The process registry: everything the harness starts is stopped when the harness ends.

Three layers, because each covers a way of ending the others miss:

1. `atexit` and SIGTERM/SIGINT handlers stop every registered process on a normal exit, an
   exception, Ctrl-C or `kill`. The first signal becomes KeyboardInterrupt so context managers and
   pytest fixtures tear down in order; a second signal kills everything at once and exits.
2. Children are started with PR_SET_PDEATHSIG (see processes.py): if the harness is SIGKILLed the
   kernel kills their group leaders.
3. A pid file per harness process (`<state>/procs/<pid>.json`) lists the process groups it owns, so
   `harness down` or the next run reaps whatever a crashed harness left behind.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import signal
import threading
from dataclasses import asdict, dataclass
from pathlib import Path
from types import FrameType

from harness.stack.paths import state_dir
from harness.stack.processes import ManagedProcess, ProcessSpec, group_alive, process_alive, start_ticks

__all__ = ["Janitor", "LeftoverGroup", "get_janitor", "install_signal_handlers", "reap_leftovers"]


@dataclass(frozen=True)
class LeftoverGroup:
    """One process group as recorded in a pid file."""

    name: str
    pgid: int
    start_ticks: int | None


class Janitor:
    """Registry of live processes of this harness process, mirrored to a pid file."""

    def __init__(self, pid_dir: Path) -> None:
        self.pid_dir = pid_dir
        self._procs: dict[int, ManagedProcess] = {}
        self._dirs: list[str] = []  # scratch dirs (PostgreSQL data, nginx config) to delete when reaped
        self._lock = threading.RLock()
        self.owner = LeftoverGroup("harness", os.getpid(), start_ticks(os.getpid()))
        atexit.register(self.stop_all)

    @property
    def pid_file(self) -> Path:
        return self.pid_dir / f"{self.owner.pgid}.json"

    def spawn(self, spec: ProcessSpec) -> ManagedProcess:
        """Start a process that the janitor will stop, also across its restarts."""
        proc = ManagedProcess(spec, on_start=self.register, on_exit=self.unregister)
        return proc.start()

    def register(self, proc: ManagedProcess) -> None:
        with self._lock:
            assert proc.pid is not None
            self._procs[proc.pid] = proc
            self._write()

    def unregister(self, proc: ManagedProcess) -> None:
        with self._lock:
            self._procs = {pid: p for pid, p in self._procs.items() if p is not proc}
            self._write()

    def track_dir(self, path: Path) -> None:
        """A scratch directory that a later reap deletes if this harness dies without cleaning up."""
        with self._lock:
            self._dirs.append(str(path))
            self._write()

    def untrack_dir(self, path: Path) -> None:
        with self._lock:
            self._dirs = [d for d in self._dirs if d != str(path)]
            self._write()

    def processes(self) -> list[ManagedProcess]:
        with self._lock:
            return list(self._procs.values())

    def stop_all(self, timeout: float = 5.0) -> None:
        """Stop everything, newest first (the service before the database it needs)."""
        for proc in reversed(self.processes()):
            try:
                proc.stop(timeout)
            except Exception:
                proc.signal(signal.SIGKILL)  # last resort: a stop must never leave it running
        with self._lock:
            for scratch in self._dirs:  # nobody will clean them up after us
                shutil.rmtree(scratch, ignore_errors=True)
            self._procs.clear()
            self._dirs.clear()
            self._write()

    def kill_all(self) -> None:
        for proc in self.processes():
            proc.signal(signal.SIGKILL)

    def _write(self) -> None:
        """Rewrite the pid file; remove it when nothing is left to reap."""
        if not self._procs and not self._dirs:
            self.pid_file.unlink(missing_ok=True)
            return
        groups = [LeftoverGroup(p.name, pid, p.start_ticks) for pid, p in self._procs.items()]
        data = {"owner": asdict(self.owner), "groups": [asdict(g) for g in groups], "dirs": self._dirs}
        self.pid_dir.mkdir(parents=True, exist_ok=True)
        tmp = self.pid_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        tmp.replace(self.pid_file)  # atomic: a reader never sees half a file


_janitor: Janitor | None = None
_janitor_lock = threading.Lock()


def get_janitor() -> Janitor:
    """The janitor of this process (one per process, like the pid file it owns)."""
    global _janitor
    with _janitor_lock:
        if _janitor is None or _janitor.owner.pgid != os.getpid():  # a fork gets its own
            _janitor = Janitor(state_dir() / "procs")
        return _janitor


def _alive(group: LeftoverGroup) -> bool:
    """True when the recorded process still exists *and* is the one recorded (pid not reused)."""
    return process_alive(group.pgid, group.start_ticks)


def _ours(group: LeftoverGroup) -> bool:
    """True when the recorded group still has members that are ours.

    A leader that is gone but left members behind keeps its number reserved (the kernel does not
    reuse a pid while it names a live process group), so those members are still ours.
    """
    if not process_alive(group.pgid):  # leader gone (or a zombie): are members left in its group?
        return group_alive(group.pgid)
    return _alive(group)


def reap_leftovers(pid_dir: Path | None = None, *, owner_pid: int | None = None) -> list[str]:
    """Kill the process groups listed in pid files of harness processes that are gone.

    With `owner_pid` it reaps that owner's file only, alive or not (used by `harness down` once the
    owner ignored SIGTERM and was killed). Returns a description of each group it killed.
    """
    pid_dir = pid_dir or state_dir() / "procs"
    killed: list[str] = []
    for path in sorted(pid_dir.glob("*.json")) if pid_dir.is_dir() else []:
        try:
            data = json.loads(path.read_text())
            owner = LeftoverGroup(**data["owner"])
            groups = [LeftoverGroup(**g) for g in data["groups"]]
        except (OSError, ValueError, KeyError, TypeError):
            path.unlink(missing_ok=True)  # unreadable: nothing we can safely act on
            continue
        if owner_pid is not None and owner.pgid != owner_pid:
            continue
        if owner_pid is None and _alive(owner):
            continue
        for group in groups:
            if _ours(group):
                _killpg(group.pgid)
                killed.append(f"{group.name} (pgid {group.pgid})")
        for scratch in data.get("dirs", []):  # only once its processes are dead
            shutil.rmtree(scratch, ignore_errors=True)
        path.unlink(missing_ok=True)
    return killed


def _killpg(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGCONT)  # harmless if running; lets a paused group die promptly
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


_installed = False
_signalled = False


def _on_signal(signum: int, frame: FrameType | None) -> None:
    global _signalled
    if _signalled:
        # Second signal while tearing down: the user wants out now. Kill, then exit at once.
        if _janitor is not None:
            _janitor.kill_all()
        os._exit(128 + signum)
    _signalled = True
    raise KeyboardInterrupt(f"signal {signal.Signals(signum).name}")


def install_signal_handlers() -> None:
    """Turn SIGTERM/SIGINT into an orderly teardown, without replacing someone else's handler.

    Only in the main thread (Python's rule) and only where the handler is still the default one.
    """
    global _installed
    if _installed or threading.current_thread() is not threading.main_thread():
        return
    for signum in (signal.SIGTERM, signal.SIGINT):
        current = signal.getsignal(signum)
        if current in (signal.SIG_DFL, signal.default_int_handler):
            signal.signal(signum, _on_signal)
    _installed = True
