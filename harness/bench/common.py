"""What both benchmarks share: the bench's stack, runs to append to, CPU groups of the stack."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.errors import HarnessError
from harness.stack import Intervals, LocalStack, StackConfig, StackInfo
from harness.stack.postgres import EmbeddedPostgres
from harness.stack.service import ROLES

__all__ = ["BenchError", "BenchSettings", "bench_stack", "BenchStack", "bench_stack_config", "create_runs"]


class BenchError(HarnessError):
    """The bench could not set up its load (the stack started but did not take it)."""


@dataclass(frozen=True)
class BenchSettings:
    """The stack the bench runs on. Runbook-default intervals (15 s heartbeat, 200 ms outbox poll);
    the queue worker is not started because the bench appends through the API itself."""

    api_replicas: int = 1
    outbox_workers: int = 1
    direct_db: bool = True  # the service reaches PostgreSQL directly, not through its toxiproxy links

    def describe(self) -> str:
        links = ("the service connects to PostgreSQL directly (the harness's toxiproxy DB links are bypassed:"
                 " they exist for fault injection, not in production)" if self.direct_db else
                 "the service connects to PostgreSQL through its toxiproxy links (no toxics), as in the chaos suites")
        return (f"{self.api_replicas} API replica(s), {self.outbox_workers} outbox worker(s), no queue worker"
                " (the bench appends through the API); runbook-default intervals (heartbeat 15 s, outbox poll"
                f" 200 ms, batch 100, pool 10); {links}; load clients connect to the API directly")


def bench_stack_config(settings: BenchSettings, env: dict[str, str] | None = None) -> StackConfig:
    return StackConfig.from_env(dict(os.environ if env is None else env), intervals=Intervals()).with_overrides(
        api_replicas=settings.api_replicas, outbox_workers=settings.outbox_workers, queue_workers=0)


@dataclass(frozen=True)
class BenchStack:
    """The started stack, plus the PostgreSQL the bench started itself (direct_db), if any."""

    stack: LocalStack
    settings: BenchSettings
    postgres_pid: int | None = None

    @property
    def info(self) -> StackInfo:
        return self.stack.info

    def cpu_groups(self) -> dict[str, int]:
        """name -> pid of every long-running stack process, counted with its descendants."""
        groups = {proc.name: proc.pid for proc in self.stack.managed_processes() if proc.pid is not None}
        if self.postgres_pid is not None:
            groups["postgres"] = self.postgres_pid
        return groups


@contextmanager
def bench_stack(settings: BenchSettings, env: dict[str, str] | None = None) -> Iterator[BenchStack]:
    """A started LocalStack for the bench; everything it (and the PostgreSQL we start) ran is stopped
    on leaving, also on an exception or Ctrl-C.

    With `direct_db`, PostgreSQL is started first (embedded, or HARNESS_POSTGRES_DSN as given) and
    every role's DATABASE_URL points at it, so no database byte crosses toxiproxy.
    """
    config = bench_stack_config(settings, env)
    logs_dir = Path(tempfile.mkdtemp(prefix="harness-bench-logs-"))
    config = config.with_overrides(logs_dir=logs_dir)
    postgres_pid = None
    with ExitStack() as owned:
        if settings.direct_db:
            dsn = config.postgres_dsn
            if dsn is None:
                server = EmbeddedPostgres(logs_dir, config.postgres)
                owned.callback(server.stop)
                server.start()
                dsn = server.dsn
                postgres_pid = server.process.pid if server.process else None
            config = config.with_overrides(postgres_dsn=dsn,
                                           role_env={role: {"DATABASE_URL": dsn} for role in ROLES})
        stack = owned.enter_context(LocalStack(config))
        yield BenchStack(stack, settings, postgres_pid)


def create_runs(base_url: str, n: int) -> list[str]:
    """n runs that stay open: with no queue worker nothing appends to them but the bench."""
    ids = []
    with httpx.Client(base_url=base_url, timeout=10.0) as http:
        for _ in range(n):
            resp = http.post("/api/agents/runs", json={"script": {"steps": 0}})
            if resp.status_code != 201:
                raise BenchError(f"POST /api/agents/runs answered {resp.status_code}: {resp.text[:200]}")
            ids.append(str(resp.json()["runId"]))
    return ids


def merge_counts(results: list[dict[str, Any]], key: str) -> int:
    return sum(int(r.get(key, 0)) for r in results)
