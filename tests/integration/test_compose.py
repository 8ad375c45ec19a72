"""docker-compose.yml brought up for real, with docker/compose.local.yml (the host network, the local images):
the compose's own service streams a run end to end through its toxiproxy and nginx, and a short suite
passes with `--postgres-dsn` / `--toxiproxy-url` pointing at the compose's PostgreSQL and toxiproxy.
Selected only when asked: `-m docker` (the images: scripts/docker_setup.sh)."""
from __future__ import annotations

import asyncio
import json
import os
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import docker
import psycopg
import pytest
import yaml

from harness.history import Frame, History, of_kind
from harness.model import TERMINAL_TYPE
from harness.stack.paths import repo_root
from harness.stack.toxiproxy_api import ToxiproxyApi
from harness.stack.waiting import wait_until
from harness.workload.runs_client import ClientConfig, RunsClient, RunScript
from harness.workload.sse_consumer import ConsumerConfig, SSEConsumer

from docker_helpers import run_pytest

pytestmark = [pytest.mark.docker, pytest.mark.tool("docker"), pytest.mark.tool("docker-compose")]

OVERRIDE = "docker/compose.local.yml"
SCRATCH_DB = "harness_suite"  # the suite truncates its tables: not the database the compose's service uses
SUITE = ("scenarios/test_conformance.py::test_a_run_streams_started_to_finished_in_order[asyncio-harness-from_seq]",
         "scenarios/test_conformance.py::test_a_cursor_at_or_past_the_terminal_event_gets_204",
         "scenarios/test_conformance.py::test_reset_peer_mid_stream_loses_and_duplicates_nothing")  # a toxic


@dataclass(frozen=True)
class Compose:
    project: str
    services: tuple[str, ...]
    postgres_port: int
    toxiproxy_url: str
    sse_url: str  # clients -> the compose's toxiproxy "sse" -> nginx -> api
    proxies: dict[str, str]  # the compose's own toxiproxy links: name -> listen address

    def run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        argv = ["docker-compose", "-p", self.project, "-f", "docker-compose.yml", "-f", OVERRIDE, *args]
        return subprocess.run(argv, cwd=repo_root(), capture_output=True, text=True, timeout=timeout)

    def diagnosis(self) -> str:
        done = self.run("ps")
        logs = self.run("logs", "--no-color", "--tail", "20")
        return (done.stdout + logs.stdout)[-6000:]


def _compose(project: str) -> Compose:
    """Where the override puts the services: read from its files, so the test follows them."""
    services = yaml.safe_load((repo_root() / OVERRIDE).read_text())["services"]
    assert set(services) == set(yaml.safe_load((repo_root() / "docker-compose.yml").read_text())["services"])
    toxiproxy_argv: list[str] = services["toxiproxy"]["command"]
    proxies = json.loads((repo_root() / "docker" / "toxiproxy.local.json").read_text())
    own = {p["name"]: p["listen"] for p in proxies}
    return Compose(project=project, services=tuple(services), postgres_port=int(services["postgres"]["environment"]["PGPORT"]),
                   toxiproxy_url=f"http://127.0.0.1:{toxiproxy_argv[toxiproxy_argv.index('-port') + 1]}",
                   sse_url=f"http://{own['sse']}", proxies=own)


def _ready(service: str, state: dict[str, Any]) -> bool:
    if service == "migrate":  # a one-shot: done when it exited 0
        return bool(state["Status"] == "exited" and state["ExitCode"] == 0)
    return bool(state.get("Health", {}).get("Status") == "healthy")


def _not_ready(compose: Compose) -> list[str]:
    """The compose's services not ready yet (or with no container yet)."""
    client = docker.from_env()
    try:
        containers = client.containers.list(all=True, filters={"label": f"com.docker.compose.project={compose.project}"})
        states = {c.labels["com.docker.compose.service"]: c.attrs["State"] for c in containers}
    finally:
        client.close()
    return [name for name in compose.services if name not in states or not _ready(name, states[name])]


@pytest.fixture(scope="module")
def compose() -> Iterator[Compose]:
    stack = _compose(f"harness-compose-{os.getpid()}")
    try:
        up = stack.run("up", "-d", "--no-build")
        assert up.returncode == 0, up.stderr[-3000:]
        try:
            wait_until(lambda: not _not_ready(stack), 60.0, "the compose project to be healthy")
        except Exception as exc:
            raise AssertionError(f"{exc}: {_not_ready(stack)}\n{stack.diagnosis()}") from None
        yield stack
    finally:  # also when `up` or the wait failed half way
        down = stack.run("down", "-v", "--timeout", "5")
        assert down.returncode == 0, down.stderr[-3000:]


async def _stream_one_run(sse_url: str) -> History:
    history = History()
    async with RunsClient(ClientConfig(sse_url), history) as client:
        run_id = await client.start_run(RunScript(steps=3, interval_ms=20))
    outcome = await SSEConsumer(ConsumerConfig(sse_url, deadline_s=30), history).consume(run_id, "c0")
    assert outcome.reached_terminal, outcome
    return history


def test_the_compose_service_streams_a_run_through_its_toxiproxy_and_nginx(compose: Compose) -> None:
    frames = of_kind(asyncio.run(_stream_one_run(compose.sse_url)), Frame)
    assert [f.seq for f in frames] == list(range(1, len(frames) + 1))
    assert [f.type for f in frames] == ["RunStarted", "RunStep", "RunStep", "RunStep", TERMINAL_TYPE]


def test_a_short_suite_passes_on_the_compose_postgres_and_toxiproxy(compose: Compose, tmp_path: Path) -> None:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:{compose.postgres_port}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {SCRATCH_DB}")
        conn.execute(f"CREATE DATABASE {SCRATCH_DB}")
    code, cases, output = run_pytest(
        ["--postgres-dsn", f"postgresql://postgres@127.0.0.1:{compose.postgres_port}/{SCRATCH_DB}",
         "--toxiproxy-url", compose.toxiproxy_url, *SUITE], tmp_path, timeout=180,
        blank=("HARNESS_POSTGRES_DSN", "TOXIPROXY_URL", "HARNESS_INFRA"))
    assert code == 0, output
    verdicts = {name: case.verdict for name, case in cases.items()}
    assert len(verdicts) == len(SUITE) and set(verdicts.values()) == {"pass"}, (verdicts, output)
    # The harness's proxies came and went beside the compose's, which it left alone.
    with ToxiproxyApi(compose.toxiproxy_url) as api:
        assert {name: p.listen for name, p in api.list_proxies().items()} == compose.proxies
