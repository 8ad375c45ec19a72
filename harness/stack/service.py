"""The processes of the service under test, as its target profile describes them (harness/target).

The profile's `migrate` process once, then `api` x N (each on its own port), `outbox-worker` x N and
`queue-worker` x N, each with the command and environment its profile gives, placeholders filled; a
process given an `image` runs as that container instead (harness/stack/containers.py: host network, the
profile's environment only, kill and pause as `docker kill` and `docker pause`, its output live in
`<logs_dir>/<name>.log`). Each role reaches PostgreSQL through its own toxiproxy link, so every link can
be faulted alone. A target that does every role in one process runs `all` x N instead (N: the API
replicas), over the one link `pg`; a role's process name (`outbox-worker-0`) then stands for the `all`
process that carries it (`carrier_name`). The default profile is the reference service's
(profiles/reference.toml); `command` replaces every process's command by `<command> <role>` (an
implementation with the reference's environment), and `source_dir` runs a patched copy of a Python
implementation (a mutant).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import httpx

from harness.errors import ConfigError, ServiceError, WaitTimeout
from harness.stack.containers import ContainerProcess, require_docker
from harness.stack.janitor import Janitor, get_janitor
from harness.stack.paths import repo_root
from harness.stack.ports import LOOPBACK, free_port, free_ports
from harness.stack.processes import ManagedProcess, ProcessSpec
from harness.stack.waiting import wait_until
from harness.target.profile import SERVED_ROLES, ProcessEntry, TargetProfile, fill, reference_profile

__all__ = ["ROLES", "Intervals", "Service", "ServiceConfig", "ServiceProcess", "carrier_name", "links_of"]

ROLES = (*SERVED_ROLES, "all")
WORKER_ROLES = ("outbox-worker", "queue-worker")  # the roles `add_replica` can start more of
PROXY_OF_ROLE = {"api": "pg_api", "outbox-worker": "pg_outbox", "queue-worker": "pg_queue", "all": "pg"}


def links_of(profile: TargetProfile) -> dict[str, str]:
    """Each started role's database link: `pg` alone for an `all` target, else one link per role (a role
    the target lacks keeps its link: a fault there reaches nothing, and scenarios needing it say so)."""
    if profile.entry("all") is not None:
        return {"all": PROXY_OF_ROLE["all"]}
    return {role: PROXY_OF_ROLE[role] for role in SERVED_ROLES}


def carrier_name(profile: TargetProfile, name: str) -> str:
    """The process that carries `name`: on an `all` target a role (`outbox-worker`), a role's process
    (`outbox-worker-0`) or glob (`outbox-worker-*`) is `all`, that replica of it (`all-0`) or `all-*`;
    any other name is itself."""
    if profile.entry("all") is None:
        return name
    if name in SERVED_ROLES:
        return "all"
    role, _, index = name.rpartition("-")
    return f"all-{index}" if role in SERVED_ROLES else name


@dataclass(frozen=True)
class Intervals:
    """The service's timing knobs; defaults are the runbook's values."""

    heartbeat_ms: int = 15000
    outbox_poll_ms: int = 200
    queue_poll_ms: int = 200
    outbox_tx_timeout_ms: int = 5000
    job_lease_ms: int = 30000
    backlog_sample_ms: int = 5000
    sse_retry_ms: int | None = None

    @classmethod
    def fast(cls) -> Intervals:
        """For tests: an idle stream heartbeats every second, a dead worker's job is retaken in 3 s."""
        return cls(heartbeat_ms=1000, outbox_poll_ms=200, queue_poll_ms=100, job_lease_ms=3000, backlog_sample_ms=500)


@dataclass(frozen=True)
class ServiceConfig:
    """How to run the service under test."""

    command: tuple[str, ...] = ()  # empty: `<this python> -m reference_impl`
    source_dir: Path | None = None  # put first on PYTHONPATH and used as cwd; None: the repo
    api_replicas: int = 1
    outbox_workers: int = 1
    queue_workers: int = 1
    intervals: Intervals = field(default_factory=Intervals)
    failpoints: str = ""  # FAILPOINTS for every process, `name=action;name=action`
    extra_env: Mapping[str, str] = field(default_factory=dict)  # for every process
    role_env: Mapping[str, Mapping[str, str]] = field(default_factory=dict)  # per role, wins over extra_env
    ready_timeout: float = 30.0
    migrate: bool = True
    profile: TargetProfile = field(default_factory=reference_profile)

    def __post_init__(self) -> None:
        counts = {"api_replicas": self.api_replicas, "outbox_workers": self.outbox_workers,
                  "queue_workers": self.queue_workers}
        if self.api_replicas < 1 or any(n < 0 for n in counts.values()):
            raise ConfigError(f"need at least one API replica and no negative counts, got {counts}")
        unknown = set(self.role_env) - set(ROLES)
        if unknown:
            raise ConfigError(f"role_env names unknown roles {sorted(unknown)}; roles are {ROLES}")
        if self.profile.images and (self.command or self.source_dir):
            raise ConfigError(f"a service command or source folder replaces local processes; the target"
                              f" {self.profile.name!r} runs images ({', '.join(self.profile.images)})")

    def entry(self, role: str) -> ProcessEntry:
        entry = self.profile.entry(role)
        if entry is None:
            raise ConfigError(f"the target {self.profile.name!r} has no {role} process")
        return entry

    def count(self, role: str) -> int:
        """How many of `role` run: the setting, or none when the target has no such process."""
        if self.profile.entry(role) is None:
            return 0
        return {"api": self.api_replicas, "all": self.api_replicas, "outbox-worker": self.outbox_workers,
                "queue-worker": self.queue_workers}[role]

    def placeholders(self, name: str, dsn: str, port: int | None, logs_dir: Path, admin_token: str) -> dict[str, str]:
        """What the profile's `{placeholders}` stand for, for one process."""
        iv = self.intervals
        return {"port": "" if port is None else str(port), "dsn": dsn, "host": LOOPBACK, "name": name,
                "admin_token": admin_token, "logs_dir": str(logs_dir), "failpoints": self.failpoints,
                "python": sys.executable, "profile_dir": str(self.profile.source.parent if self.profile.source else ""),
                "heartbeat_ms": str(iv.heartbeat_ms), "heartbeat_s": f"{iv.heartbeat_ms / 1000:g}",
                "poll_ms": str(iv.outbox_poll_ms), "outbox_poll_ms": str(iv.outbox_poll_ms),
                "queue_poll_ms": str(iv.queue_poll_ms), "outbox_tx_timeout_ms": str(iv.outbox_tx_timeout_ms),
                "job_lease_ms": str(iv.job_lease_ms), "backlog_sample_ms": str(iv.backlog_sample_ms),
                "sse_retry_ms": "" if iv.sse_retry_ms is None else str(iv.sse_retry_ms)}

    def workdir(self) -> Path:
        return self.source_dir or repo_root()


@dataclass
class ServiceProcess:
    """One process of the service: its role, replica index, port (API or ops) and the process."""

    role: str
    index: int
    port: int | None  # None: the process listens on no port
    process: ManagedProcess
    health: str | None = None  # the path answering 200 once ready; None: up for the profile's ready_after_s

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}"

    @property
    def url(self) -> str | None:
        return None if self.port is None else f"http://{LOOPBACK}:{self.port}"

    @property
    def health_url(self) -> str | None:
        return None if self.url is None or self.health is None else f"{self.url}{self.health}"


class Service:
    """Migrates, starts, watches and stops the service's processes."""

    def __init__(self, config: ServiceConfig, role_dsns: Mapping[str, str], logs_dir: Path, *,
                 admin_token: str, janitor: Janitor | None = None) -> None:
        self.config = config
        self.role_dsns = dict(role_dsns)
        self.logs_dir = logs_dir
        self.admin_token = admin_token
        self._janitor = janitor or get_janitor()
        listening = sum(config.count(r) for r in ROLES if config.count(r) and config.entry(r).listens)
        ports = iter(free_ports(listening))  # chosen now, so proxies and nginx can point at the API first
        self.processes = [self._make(role, i, next(ports) if config.entry(role).listens else None)
                          for role in ROLES for i in range(config.count(role))]

    @property
    def apis(self) -> list[ServiceProcess]:
        """The processes serving the API: the `api` replicas, or the `all` ones."""
        return [p for p in self.processes if p.role in ("api", "all")]

    def carrying(self, role: str) -> list[ServiceProcess]:
        """The processes doing `role`: its own, or the `all` ones."""
        return [p for p in self.processes if p.role in (role, "all")]

    def get(self, name: str) -> ServiceProcess:
        """A process by name; a role's name (`outbox-worker-0`) on an `all` target is its `all` process."""
        real = carrier_name(self.config.profile, name)
        for proc in self.processes:
            if proc.name == real:
                return proc
        raise KeyError(f"no service process {name!r}; have {[p.name for p in self.processes]}")

    def launch(self, role: str, name: str, dsn_role: str, port: int | None) -> tuple[tuple[str, ...], dict[str, str]]:
        """The argv (an image's: its args) and environment of one process: the profile's, placeholders
        filled. A variable whose value comes out empty from a placeholder (`SSE_RETRY_MS = "{sse_retry_ms}"`
        with no retry set) is left out, so the target's own default applies. A container gets only
        that and the harness's settings, not the harness's own environment, which means nothing in it."""
        cfg = self.config
        entry = cfg.entry(role)
        values = cfg.placeholders(name, self.role_dsns[dsn_role], port, self.logs_dir, self.admin_token)
        filled = {var: (template, fill(template, values)) for var, template in entry.env.items()}
        env = {var: value for var, (template, value) in filled.items() if value or not template}
        settings = dict(cfg.extra_env) | dict(cfg.role_env.get(role, {}))
        if entry.image:
            return tuple(fill(arg, values) for arg in entry.args), env | settings
        argv = (*cfg.command, role) if cfg.command else tuple(fill(arg, values) for arg in entry.command)
        env = {**os.environ, **env}
        if cfg.source_dir is not None:  # the patched copy must win over the installed package
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cfg.source_dir), os.environ.get("PYTHONPATH")]))
        return argv, env | settings

    def _process(self, role: str, name: str, dsn_role: str, port: int | None, **options: Any) -> ManagedProcess:
        """One process of `role`, not started: a local one the janitor owns, or its image's container."""
        argv, env = self.launch(role, name, dsn_role, port)
        image = self.config.entry(role).image
        spec = ProcessSpec(name=name, argv=("docker", "run", image, *argv) if image else argv,
                           log_path=self.logs_dir / f"{name}.log", env=env, cwd=None if image else self.config.workdir(),
                           **options)
        if image:
            return ContainerProcess(spec, image, argv, janitor=self._janitor)
        return ManagedProcess(spec, self._janitor.register, self._janitor.unregister)

    def _make(self, role: str, index: int, port: int | None) -> ServiceProcess:
        name = f"{role}-{index}"
        url = None if port is None else f"http://{LOOPBACK}:{port}"
        process = self._process(role, name, role, port, stop_timeout=8.0,
                                extra={"role": role, **({"url": url} if url else {})})
        return ServiceProcess(role, index, port, process, self.config.entry(role).health)

    def add_replica(self, role: str) -> ServiceProcess:
        """Another replica of a worker role, started and ready (`outbox-worker-1` beside `-0`), with the
        role's own link; the stack stops it like the others. API replicas are fixed at start: the sse
        link and nginx point at the replicas the stack started with."""
        workers = [r for r in WORKER_ROLES if self.config.profile.entry(r) is not None]
        if role not in workers:
            raise ConfigError(f"cannot start another {role!r}; roles that can: {', '.join(workers) or 'none'}")
        index = 1 + max((p.index for p in self.processes if p.role == role), default=-1)
        proc = self._make(role, index, free_port() if self.config.entry(role).listens else None)
        self.processes.append(proc)
        proc.process.start()
        self.wait_ready([proc])
        return proc

    def migrate(self, timeout: float = 60.0) -> None:
        if self.config.profile.entry("migrate") is None:
            return  # the target migrates by itself
        link_role = "all" if self.config.profile.entry("all") is not None else "api"
        proc = self._process("migrate", "migrate", link_role, None).start()  # through the api's (or the one) link
        try:
            code = proc.wait_exit(timeout)
        finally:
            _remove(proc)
        if code != 0:
            raise ServiceError(f"`{' '.join(proc.spec.argv)}` exited with {code}; log {proc.spec.log_path}:\n{proc.tail()}")

    def start(self) -> None:
        images = self.config.profile.images
        if images:
            require_docker(images, f"the target {self.config.profile.name!r}",
                           "build or pull them first (`docker build -t NAME DIR`, `docker pull NAME`)")
        if self.config.migrate:
            self.migrate()
        for proc in self.processes:
            proc.process.start()
        self.wait_ready(self.processes)

    def wait_ready(self, procs: list[ServiceProcess] | None = None, timeout: float | None = None) -> None:
        """Every listed process answers 200 on /healthz (the API's, or a worker's ops listener)."""
        pending = list(procs if procs is not None else self.processes)
        grace = self.config.profile.ready_after_s
        with httpx.Client(timeout=2.0) as http:
            def ready(proc: ServiceProcess) -> bool:
                if proc.health_url is None:  # no health path: ready once it has stayed up a while
                    return proc.process.uptime() >= grace
                return http.get(proc.health_url).status_code == 200

            def all_ready() -> bool:
                for proc in list(pending):
                    self._check_alive(proc)
                    if ready(proc):
                        pending.remove(proc)
                return not pending

            try:
                wait_until(all_ready, timeout or self.config.ready_timeout, "the service's /healthz")
            except WaitTimeout as exc:
                names = ", ".join(p.name for p in pending)
                tails = "\n".join(f"--- {p.process.spec.log_path}:\n{p.process.tail(10)}" for p in pending)
                raise ServiceError(f"{exc}; not ready: {names}\n{tails}") from exc

    def _check_alive(self, proc: ServiceProcess) -> None:
        if not proc.process.running:
            raise ServiceError(f"{proc.name} exited with {proc.process.returncode} before it was ready;"
                               f" log {proc.process.spec.log_path}:\n{proc.process.tail()}")

    def restart(self, name: str, *, crash: bool = False, wait: bool = True) -> ServiceProcess:
        proc = self.get(name)
        proc.process.restart(crash=crash)
        if wait:
            self.wait_ready([proc])
        return proc

    def stop(self) -> None:
        """All at once (each drains in-flight work for up to 5 s: in parallel, not in sequence)."""
        for proc in self.processes:
            proc.process.terminate()
        for proc in reversed(self.processes):
            proc.process.stop()
        for proc in self.processes:
            _remove(proc.process)


def _remove(proc: ManagedProcess) -> None:
    """A container is removed once stopped (its log is in its file); a local process leaves nothing."""
    if isinstance(proc, ContainerProcess):
        proc.remove()
