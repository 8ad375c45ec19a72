"""The local stack composed: PostgreSQL, toxiproxy and its links, nginx, the service.

```
clients ──► toxiproxy "sse" ──► [nginx] ──► api-0..N      (each api-i also has a direct URL)
api-*           ──► "pg_api"    ──► PostgreSQL
outbox-worker-* ──► "pg_outbox" ──► PostgreSQL
queue-worker-*  ──► "pg_queue"  ──► PostgreSQL
observer (info.dsn)            ──► PostgreSQL directly
```

A target doing every role in one process has `all-*` instead of the three roles, over the one link
"pg"; only the links of the processes it runs exist (`links`), so a fault on another is an error.

Started in that dependency order and torn down in reverse; a failure part-way tears down what
was started before the error propagates.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import secrets
import tempfile
import time
from pathlib import Path
from typing import Callable

from harness.errors import HarnessError, StackError
from harness.model import LINKS
from harness.stack.config import StackConfig
from harness.stack.containers import ContainerPostgres, ContainerToxiproxy
from harness.stack.info import ProcessInfo, StackInfo
from harness.stack.janitor import get_janitor
from harness.stack.nginx import Nginx, NginxMode
from harness.stack.ports import LOOPBACK, free_port
from harness.stack.postgres import PostgresServer, make_postgres, with_host_port
from harness.stack.processes import ManagedProcess
from harness.stack.service import Service, carrier_name, links_of
from harness.stack.toxiproxy_api import ToxiproxyApi
from harness.stack.toxiproxy_server import ToxiproxyServer, make_toxiproxy
from harness.target.profile import TargetProfile, reference_profile

__all__ = ["LocalStack", "OnStarted"]

log = logging.getLogger(__name__)
# Before our proxy names on an existing toxiproxy (TOXIPROXY_URL): its own proxies (docker-compose.yml's
# "sse", "pg_api", ...) are never taken for ours, replaced, or deleted.
SHARED_PREFIX = "harness_"


OnStarted = Callable[[str, float], None]  # (component, seconds it took to start), as each one is up


class LocalStack:
    """Owns every component of one stack. Use as a context manager, or start() / stop().
    `on_started(component, seconds)` is told as each component is up, for a person waiting on the start."""

    def __init__(self, config: StackConfig | None = None, on_started: OnStarted | None = None) -> None:
        self.config = config or StackConfig()
        self.on_started = on_started
        self.logs_dir = (self.config.logs_dir or Path(tempfile.mkdtemp(prefix="harness-logs-"))).resolve()
        self.admin_token = secrets.token_hex(16)
        self.postgres: PostgresServer | None = None
        self.toxiproxy: ToxiproxyServer | None = None
        self.api: ToxiproxyApi | None = None  # the toxiproxy API client (the network nemesis's handle)
        self.nginx: Nginx | None = None
        self.service: Service | None = None
        self._api_port = 0  # the first API replica's port (or where an API would listen without service)
        self._info: StackInfo | None = None

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def info(self) -> StackInfo:
        if self._info is None:
            raise StackError("the stack is not started")
        return self._info

    @property
    def profile(self) -> TargetProfile:
        """The target the stack runs: its service's profile (the reference's when it runs no service)."""
        return self.config.service.profile if self.config.service is not None else reference_profile()

    @property
    def links(self) -> tuple[str, ...]:
        """This stack's links: `sse` and the database links of the target's processes."""
        return ("sse", *links_of(self.profile).values())

    def proxy_name(self, logical: str) -> str:
        shared = SHARED_PREFIX if self.config.toxiproxy_url else ""
        return f"{shared}{self.config.proxy_prefix}{logical}"

    def start(self) -> StackInfo:
        get_janitor()  # the pid file must exist before the first child does
        self.logs_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._timed("postgres", self._start_postgres)
            self._timed("toxiproxy", self._start_toxiproxy)
            role_dsns = self._create_pg_links()
            self._make_service(role_dsns)
            if self.config.nginx is not NginxMode.OFF:
                self._timed("nginx", self._start_nginx)
            self._create_sse_link()
            if self.service is not None:
                self._timed(f"service ({len(self.service.processes)} processes)", self.service.start)
        except BaseException:
            self.stop()  # also on Ctrl-C during start: nothing may be left running
            raise
        self._info = self._describe(role_dsns)
        return self._info

    def _timed(self, component: str, start: Callable[[], None]) -> None:
        t0 = time.monotonic()
        start()
        if self.on_started is not None:
            self.on_started(component, time.monotonic() - t0)

    def _start_postgres(self) -> None:
        if self.config.infra == "docker" and not self.config.postgres_dsn:
            self.postgres = ContainerPostgres(self.logs_dir, self.config.postgres)
        else:
            self.postgres = make_postgres(self.config.postgres_dsn, self.logs_dir, self.config.postgres)
        self.postgres.start()

    def _start_toxiproxy(self) -> None:
        if self.config.infra == "docker" and not self.config.toxiproxy_url:
            self.toxiproxy = ContainerToxiproxy(self.logs_dir)
        else:
            self.toxiproxy = make_toxiproxy(self.config.toxiproxy_url, self.logs_dir)
        self.toxiproxy.start()
        self.api = self.toxiproxy.api()
        for name in LINKS:  # a previous run on a shared server may have left ours behind (any target's)
            if self.proxy_name(name) in self.api.list_proxies():
                self.api.delete_proxy(self.proxy_name(name))

    def _create_pg_links(self) -> dict[str, str]:
        """One proxy per role in front of PostgreSQL; returns each role's DSN through its link."""
        assert self.postgres is not None and self.api is not None
        upstream = f"{self.postgres.host}:{self.postgres.port}"
        dsns = {}
        for role, logical in links_of(self.profile).items():
            # Port 0: toxiproxy binds a free port itself, so there is no race for it.
            proxy = self.api.create_proxy(self.proxy_name(logical), f"{LOOPBACK}:0", upstream)
            dsns[role] = with_host_port(self.postgres.dsn, LOOPBACK, proxy.port)
        return dsns

    def _make_service(self, role_dsns: dict[str, str]) -> None:
        if self.config.service is None:
            self._api_port = free_port()  # for an API run by hand on this port
            return
        self.service = Service(self.config.service, role_dsns, self.logs_dir, admin_token=self.admin_token)
        port = self.service.apis[0].port
        assert port is not None  # the profile's api listens (harness/target/profile.py checks it)
        self._api_port = port

    def _start_nginx(self) -> None:
        ports = tuple(a.port for a in self.service.apis if a.port) if self.service else (self._api_port,)
        self.nginx = Nginx(ports, self.config.nginx, self.logs_dir)
        self.nginx.start()

    def _create_sse_link(self) -> None:
        """The "sse" proxy, to nginx (in front of every replica) or to the first replica."""
        assert self.api is not None
        target = self.nginx.port if self.nginx else self._api_port
        self.api.create_proxy(self.proxy_name("sse"), f"{LOOPBACK}:0", f"{LOOPBACK}:{target}")

    def _describe(self, role_dsns: dict[str, str]) -> StackInfo:
        assert self.postgres is not None and self.toxiproxy is not None and self.api is not None
        proxies = self.api.list_proxies()
        listen = {name: proxies[self.proxy_name(name)].listen for name in self.links}
        apis = self.service.apis if self.service else []
        direct = tuple(a.url for a in apis if a.url) or (f"http://{LOOPBACK}:{self._api_port}",)
        return StackInfo(
            api_url=f"http://{listen['sse']}",
            api_direct_url=direct[0],
            dsn=self.postgres.dsn,
            toxiproxy_url=self.toxiproxy.url,
            logs_dir=str(self.logs_dir),
            admin_token=self.admin_token,
            api_direct_urls=direct,
            nginx_url=self.nginx.url if self.nginx else None,
            role_dsns=role_dsns,
            proxies={name: self.proxy_name(name) for name in self.links},
            proxy_listen=listen,
            admin_urls={p.name: p.url for p in self.service.processes if p not in self.service.apis and p.url}
            if self.service else {},
            processes=tuple(self._process_info(p) for p in self.managed_processes()),
            owner_pid=os.getpid(),
        )

    def current_info(self) -> StackInfo:
        """`info` with each process's pid as it is now (a restart changes it)."""
        return dataclasses.replace(self.info, processes=tuple(self._process_info(p) for p in self.managed_processes()))

    @staticmethod
    def _process_info(proc: ManagedProcess) -> ProcessInfo:
        return ProcessInfo(name=proc.name, role=proc.spec.extra.get("role", proc.name), pid=proc.pid,
                           url=proc.spec.extra.get("url"), log=str(proc.spec.log_path))

    def managed_processes(self) -> list[ManagedProcess]:
        """Every long-running process this stack owns, in start order."""
        procs = [getattr(self.postgres, "process", None), getattr(self.toxiproxy, "process", None),
                 self.nginx.process if self.nginx else None]
        procs += [p.process for p in self.service.processes] if self.service else []
        return [p for p in procs if p is not None]

    def process(self, name: str) -> ManagedProcess:
        """A process by name: `postgres`, `toxiproxy`, `nginx`, `api-0`, `outbox-worker-1`, ... (a role's
        name on an `all` target: the `all` process carrying it, `real_name`)."""
        real = self.real_name(name)
        for proc in self.managed_processes():
            if proc.name == real:
                return proc
        raise KeyError(f"no process {name!r} in this stack")

    def real_name(self, name: str) -> str:
        """The process a fault on `name` hits: itself, or on an `all` target the `all` process doing that role."""
        return carrier_name(self.profile, name)

    def revive(self, name: str) -> None:
        """Start `name` again if it is dead, and wait until a service process is ready; nothing else is
        touched, so other faults still in force stay in force."""
        if name == "postgres" and self.postgres is not None:
            pg_process = getattr(self.postgres, "process", None)  # only an embedded server has one
            if pg_process is not None and not pg_process.running:
                self.postgres.start()
            return
        if self.service is not None and any(p.name == self.real_name(name) for p in self.service.processes):
            proc = self.service.get(name)
            if not proc.process.running:
                proc.process.start()
                self.service.wait_ready([proc])
            return
        if not self.process(name).running:
            self.process(name).start()

    def heal(self) -> None:
        """Undo every fault: resume paused processes, restart dead ones, remove every toxic.

        Run between tests on a shared stack, and as the final heal of a nemesis schedule.
        """
        for proc in self.managed_processes():
            if proc.paused:
                proc.resume()
        self.reset_proxies()
        pg_process = getattr(self.postgres, "process", None)  # only an embedded server has one
        if self.postgres is not None and pg_process is not None and not pg_process.running:
            self.postgres.start()
        if self.service is not None:
            dead = [p for p in self.service.processes if not p.process.running]
            for service_proc in dead:
                service_proc.process.start()
            if dead:
                self.service.wait_ready(dead)

    def reset_proxies(self) -> None:
        """Every link of this stack enabled and without toxics.

        On our own server that is toxiproxy's `/reset`; on a shared one (TOXIPROXY_URL) only our
        proxies are touched, so another stack's faults are left alone.
        """
        if self.api is None or self.toxiproxy is None:
            return
        if self.toxiproxy.owned:
            self.api.reset()
            return
        for name in self.links:
            proxy = self.api.get_proxy(self.proxy_name(name))
            for toxic in proxy.toxics:
                self.api.remove_toxic(proxy.name, toxic.name)
            if not proxy.enabled:
                self.api.enable(proxy.name)

    def stop(self) -> None:
        """Tear down in reverse order; every step runs even when an earlier one fails."""
        steps: list[tuple[str, Callable[[], None]]] = [
            ("service", lambda: self.service.stop() if self.service else None),
            ("nginx", lambda: self.nginx.stop() if self.nginx else None),
            ("proxies", self._delete_proxies),
            ("toxiproxy", lambda: self.toxiproxy.stop() if self.toxiproxy else None),
            ("postgres", lambda: self.postgres.close() if self.postgres else None),
        ]
        for what, step in steps:
            try:
                step()
            except (HarnessError, OSError) as exc:
                log.warning("stopping %s failed: %s", what, exc)
        self.service = self.nginx = None
        self.toxiproxy = self.postgres = None
        self._info = None

    def _delete_proxies(self) -> None:
        """On a shared server, leave no proxies of ours behind (a local one just stops)."""
        if self.api is None:
            return
        if self.toxiproxy is not None and not self.toxiproxy.owned:
            existing = self.api.list_proxies()
            for name in self.links:
                if self.proxy_name(name) in existing:
                    self.api.delete_proxy(self.proxy_name(name))
        self.api.close()
        self.api = None
