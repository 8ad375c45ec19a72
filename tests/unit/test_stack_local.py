"""The composed stack with a stand-in service: topology, per-role links, heal, teardown."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from harness.errors import ServiceError
from harness.stack import Intervals, LocalStack, NginxMode, ServiceConfig, StackConfig

from stack_helpers import FAKE_SERVICE, assert_gone, isolated_state_dir  # noqa: F401 (autouse)


def fake_service(**kw: Any) -> ServiceConfig:
    return ServiceConfig(command=(sys.executable, str(FAKE_SERVICE)), intervals=Intervals.fast(), **kw)


def first_log_line(path: str) -> dict[str, str]:
    line: dict[str, str] = json.loads(Path(path).read_text().splitlines()[0])
    return line


@pytest.fixture(scope="module")
def timed_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, float]]:
    """The stack and the seconds it took to start."""
    config = StackConfig(service=fake_service(api_replicas=2), nginx=NginxMode.ON,
                         logs_dir=tmp_path_factory.mktemp("stack-logs"))
    started = time.monotonic()
    with LocalStack(config) as running:
        yield running, time.monotonic() - started
        pids = [p.pid for p in running.managed_processes()]
    for pid in pids:
        assert pid is not None
        assert_gone(pid)


@pytest.fixture(scope="module")
def stack(timed_stack: tuple[LocalStack, float]) -> LocalStack:
    return timed_stack[0]


def test_endpoints_and_topology(timed_stack: tuple[LocalStack, float]) -> None:
    stack, start_seconds = timed_stack
    info = stack.info
    assert start_seconds < 10
    assert httpx.get(f"{info.api_url}/healthz").json()["ok"] is True  # sse proxy -> nginx -> an api
    assert len(info.api_direct_urls) == 2
    for url in info.api_direct_urls:
        assert httpx.get(f"{url}/healthz").status_code == 200
    assert stack.api is not None
    proxies = stack.api.list_proxies()
    assert set(proxies) == {"sse", "pg_api", "pg_outbox", "pg_queue"}
    assert stack.nginx is not None
    assert proxies["sse"].upstream == f"127.0.0.1:{stack.nginx.port}"
    assert {p.name for p in info.processes} >= {"postgres", "toxiproxy", "nginx", "api-0", "api-1",
                                               "outbox-worker-0", "queue-worker-0"}
    assert set(info.admin_urls) == {"outbox-worker-0", "queue-worker-0"}


def test_each_role_goes_through_its_own_link(stack: LocalStack) -> None:
    info = stack.info
    for proc in info.processes:
        if proc.role in ("api", "outbox-worker", "queue-worker"):
            line = first_log_line(proc.log)
            assert line["DATABASE_URL"] == info.role_dsns[proc.role]
            assert line["ADMIN_TOKEN"] == info.admin_token and line["HEARTBEAT_MS"] == "1000"
            assert line["SERVICE_NAME"] == proc.name
            assert Path(proc.log).name == f"{proc.name}.log"
    pg_api_port = info.proxy_listen["pg_api"].rsplit(":", 1)[1]
    assert f"127.0.0.1:{pg_api_port}" in info.role_dsns["api"]
    assert stack.api is not None
    stack.api.disable("pg_api")
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(info.role_dsns["api"], connect_timeout=1)
        with psycopg.connect(info.role_dsns["queue-worker"], connect_timeout=2) as conn:  # other links unaffected
            assert conn.execute("SELECT 1").fetchone() == (1,)
        with psycopg.connect(info.dsn, connect_timeout=2) as conn:  # the observer never goes through a proxy
            assert conn.execute("SELECT 1").fetchone() == (1,)
    finally:
        stack.heal()
    with psycopg.connect(info.role_dsns["api"], connect_timeout=2) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_heal_restarts_dead_and_resumes_paused(stack: LocalStack) -> None:
    api0, worker = stack.process("api-0"), stack.process("outbox-worker-0")
    old_pid = api0.pid
    api0.kill()
    worker.pause()
    assert stack.postgres is not None
    stack.postgres.kill()
    stack.heal()
    assert api0.running and api0.pid != old_pid and not worker.paused
    assert httpx.get(f"{stack.info.api_direct_urls[0]}/healthz").status_code == 200
    with psycopg.connect(stack.info.dsn, connect_timeout=2) as conn:
        assert conn.execute("SELECT 1").fetchone() == (1,)


def test_failed_migration_leaves_nothing_running(tmp_path: Path) -> None:
    config = StackConfig(service=fake_service(extra_env={"FAKE_MIGRATE_FAIL": "1"}), logs_dir=tmp_path)
    stack = LocalStack(config)
    with pytest.raises(ServiceError, match="migrate.* exited with 3"):
        stack.start()
    assert stack.managed_processes() == []
    assert not (tmp_path / "api-0.log").exists()


def test_process_dying_at_start_fails_fast(tmp_path: Path) -> None:
    config = StackConfig(service=fake_service(extra_env={"FAKE_CRASH_ROLE": "queue-worker"}), logs_dir=tmp_path)
    started = time.monotonic()
    with pytest.raises(ServiceError, match="queue-worker-0 exited with 4"):
        LocalStack(config).start()
    assert time.monotonic() - started < 10


def test_on_an_existing_toxiproxy_our_proxy_names_never_take_its_own(tmp_path: Path) -> None:
    def name(**kw: Any) -> str:
        return LocalStack(StackConfig(service=None, logs_dir=tmp_path, **kw)).proxy_name("sse")

    assert name() == "sse" and name(proxy_prefix="f0_") == "f0_sse"  # our own server: the plain names
    assert name(toxiproxy_url="http://127.0.0.1:8474") == "harness_sse"
    assert name(toxiproxy_url="http://127.0.0.1:8474", proxy_prefix="f0_") == "harness_f0_sse"
