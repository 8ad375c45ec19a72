"""The processes of the service under test, as docs/CONTRACTS.md describes them.

`<command> migrate` once, then `api` x N (each on its own port), `outbox-worker` x N and
`queue-worker` x N (each with an ops port). Each role reaches PostgreSQL through its own toxiproxy
link, so every link can be faulted alone. The command and the source directory are settings: another
implementation under test is another command, a mutant is a patched copy of the source.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import httpx

from harness.errors import ConfigError, ServiceError, WaitTimeout
from harness.stack.janitor import Janitor, get_janitor
from harness.stack.paths import repo_root
from harness.stack.ports import LOOPBACK, free_ports
from harness.stack.processes import ManagedProcess, ProcessSpec
from harness.stack.waiting import wait_until

__all__ = ["ROLES", "Intervals", "Service", "ServiceConfig", "ServiceProcess"]

ROLES = ("api", "outbox-worker", "queue-worker")
PROXY_OF_ROLE = {"api": "pg_api", "outbox-worker": "pg_outbox", "queue-worker": "pg_queue"}


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

    def env(self) -> dict[str, str]:
        env = {
            "HEARTBEAT_MS": str(self.heartbeat_ms),
            "OUTBOX_POLL_MS": str(self.outbox_poll_ms),
            "QUEUE_POLL_MS": str(self.queue_poll_ms),
            "OUTBOX_TX_TIMEOUT_MS": str(self.outbox_tx_timeout_ms),
            "JOB_LEASE_MS": str(self.job_lease_ms),
            "BACKLOG_SAMPLE_MS": str(self.backlog_sample_ms),
        }
        if self.sse_retry_ms is not None:
            env["SSE_RETRY_MS"] = str(self.sse_retry_ms)
        return env


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

    def __post_init__(self) -> None:
        counts = {"api_replicas": self.api_replicas, "outbox_workers": self.outbox_workers,
                  "queue_workers": self.queue_workers}
        if self.api_replicas < 1 or any(n < 0 for n in counts.values()):
            raise ConfigError(f"need at least one API replica and no negative counts, got {counts}")
        unknown = set(self.role_env) - set(ROLES)
        if unknown:
            raise ConfigError(f"role_env names unknown roles {sorted(unknown)}; roles are {ROLES}")

    def argv(self, role: str) -> tuple[str, ...]:
        return (*(self.command or (sys.executable, "-m", "reference_impl")), role)

    def count(self, role: str) -> int:
        return {"api": self.api_replicas, "outbox-worker": self.outbox_workers,
                "queue-worker": self.queue_workers}[role]

    def workdir(self) -> Path:
        return self.source_dir or repo_root()


@dataclass
class ServiceProcess:
    """One process of the service: its role, replica index, port (API or ops) and the process."""

    role: str
    index: int
    port: int
    process: ManagedProcess

    @property
    def name(self) -> str:
        return f"{self.role}-{self.index}"

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def health_url(self) -> str:
        return f"{self.url}/healthz"


class Service:
    """Migrates, starts, watches and stops the service's processes."""

    def __init__(self, config: ServiceConfig, role_dsns: Mapping[str, str], logs_dir: Path, *,
                 admin_token: str, janitor: Janitor | None = None) -> None:
        self.config = config
        self.role_dsns = dict(role_dsns)
        self.logs_dir = logs_dir
        self.admin_token = admin_token
        self._janitor = janitor or get_janitor()
        total = sum(config.count(r) for r in ROLES)
        ports = iter(free_ports(total))  # chosen now, so proxies and nginx can point at the API first
        self.processes = [self._make(role, i, next(ports)) for role in ROLES for i in range(config.count(role))]

    @property
    def apis(self) -> list[ServiceProcess]:
        return [p for p in self.processes if p.role == "api"]

    def get(self, name: str) -> ServiceProcess:
        for proc in self.processes:
            if proc.name == name:
                return proc
        raise KeyError(f"no service process {name!r}; have {[p.name for p in self.processes]}")

    def env(self, role: str, name: str, port: int | None) -> dict[str, str]:
        cfg = self.config
        env = {**os.environ, "PYTHONUNBUFFERED": "1", "DATABASE_URL": self.role_dsns[role],
               "ADMIN_TOKEN": self.admin_token, "SERVICE_NAME": name, "LOGS_DIR": str(self.logs_dir),
               "FAILPOINTS": cfg.failpoints, **cfg.intervals.env()}
        if cfg.source_dir is not None:  # the patched copy must win over the installed package
            env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(cfg.source_dir), os.environ.get("PYTHONPATH")]))
        if port is not None:  # None: a one-off command (migrate) that listens nowhere
            env |= {"API_HOST": LOOPBACK, "API_PORT": str(port)} if role == "api" else \
                {"ADMIN_HOST": LOOPBACK, "ADMIN_PORT": str(port)}
        return env | dict(cfg.extra_env) | dict(cfg.role_env.get(role, {}))

    def _make(self, role: str, index: int, port: int) -> ServiceProcess:
        name = f"{role}-{index}"
        spec = ProcessSpec(name=name, argv=self.config.argv(role), log_path=self.logs_dir / f"{name}.log",
                           env=self.env(role, name, port), cwd=self.config.workdir(), stop_timeout=8.0,
                           extra={"role": role, "url": f"http://{LOOPBACK}:{port}"})
        return ServiceProcess(role, index, port, ManagedProcess(spec, self._janitor.register,
                                                                self._janitor.unregister))

    def migrate(self, timeout: float = 60.0) -> None:
        spec = ProcessSpec(name="migrate", argv=self.config.argv("migrate"), log_path=self.logs_dir / "migrate.log",
                           env=self.env("api", "migrate", None), cwd=self.config.workdir())
        proc = self._janitor.spawn(spec)
        code = proc.wait_exit(timeout)
        if code != 0:
            raise ServiceError(f"`{' '.join(spec.argv)}` exited with {code}; log {spec.log_path}:\n{proc.tail()}")

    def start(self) -> None:
        if self.config.migrate:
            self.migrate()
        for proc in self.processes:
            proc.process.start()
        self.wait_ready(self.processes)

    def wait_ready(self, procs: list[ServiceProcess] | None = None, timeout: float | None = None) -> None:
        """Every listed process answers 200 on /healthz (the API's, or a worker's ops listener)."""
        pending = list(procs if procs is not None else self.processes)
        with httpx.Client(timeout=2.0) as http:
            def all_ready() -> bool:
                for proc in list(pending):
                    self._check_alive(proc)
                    if http.get(proc.health_url).status_code == 200:
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
