"""`Scenario`: one test's record bound to the stack it runs on, with the roles as attributes.

    run_id = await scenario.start_run(steps=40, interval_ms=25)
    consuming = scenario.consume(run_id, 2, prefix="q")
    await scenario.until(lambda: len(scenario.seqs(run_id)) >= 9, 20, "first frames")
    with scenario.nemesis.paused("outbox-worker-0"):
        await scenario.hold(1.5)
    await consuming
    await scenario.assert_invariants([run_id])

- `nemesis`: faults on this stack, recorded in this history (`harness.toolkit.nemesis`).
- `db`, `logs`, `runbook`: the database rows, the service's log lines, the runbook as code.
- `start_run`, `client`, `consume`: the workload, recording into this history.
- `frames`, `seqs`, `heartbeats`, `conns`, `resumptions`: what clients received so far
  (`harness.toolkit.views`); `http()`: a plain client for checks of the wire itself.
- `until`: a bounded wait that keeps the consumers reading; `hold`: a fault window's duration.
- `judge`, `snapshot`, `assert_invariants`: the checkers over this history and the database.

The `scenario` fixture binds the shared stack lazily (a test on its own stack never starts it);
`scenario.on(other)` is the same record bound to a stack from `stack_factory`.
"""
from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, TypeVar

import httpx

from harness.checks import Conn, Result
from harness.history import Frame
from harness.model import Snapshot
from harness.observer import snapshot_of, wait_for_outbox_async
from harness.scenario import DELIVERY, WAIT_S, ScenarioRecord, assert_invariants
from harness.stack import LocalStack, until
from harness.toolkit import views
from harness.toolkit.nemesis import Nemesis
from harness.toolkit.sources import Database, Runbook, ServiceLogs
from harness.workload import (
    ClientConfig,
    ConsumerConfig,
    ConsumerOutcome,
    RunsClient,
    RunScript,
    StreamOpener,
    consume_all,
    open_lines,
)
from harness.workload.tls import tls_context

__all__ = ["Scenario"]

T = TypeVar("T")


@dataclass
class Scenario(ScenarioRecord):
    stack_source: Callable[[], LocalStack] | None = field(default=None, repr=False)

    @property
    def stack(self) -> LocalStack:
        if self.stack_source is None:
            raise RuntimeError("this scenario is bound to no stack: use scenario.on(stack)")
        return self.stack_source()

    def on(self, stack: LocalStack) -> Scenario:
        """This record (same folder and history) bound to another stack."""
        return Scenario(self.folder, self.history, lambda: stack)

    def needs(self, *capabilities: str) -> None:
        """The target must have these capabilities (harness.target.CAPABILITIES); when it lacks one, the
        scenario stops here as not applicable, naming it. The toolkit calls it where a step needs one
        (a failpoint, a `Last-Event-ID` resume); a scenario calls it, or uses the `needs` marker, for the rest."""
        from harness.pytest_plugin import require_capabilities

        require_capabilities(self.stack.profile, list(capabilities))

    # -- roles bound to the stack and the history --

    @property
    def nemesis(self) -> Nemesis:
        return Nemesis(self.stack, self.history, self.needs)

    @property
    def db(self) -> Database:
        return Database(self.stack.info.dsn)

    @property
    def logs(self) -> ServiceLogs:
        return ServiceLogs(Path(self.stack.info.logs_dir), self.stack.profile.logs, self.stack.real_name)

    @property
    def runbook(self) -> Runbook:
        return Runbook(self.stack, self.history)

    # -- workload --

    def client(self, **overrides: Any) -> RunsClient:
        """The runs API client (`async with scenario.client() as client:`), through the sse proxy."""
        return RunsClient(ClientConfig(**{"base_url": self.stack.info.api_url, **overrides}), self.history)

    async def start_run(self, **script: Any) -> str:
        """A run with a job for the queue worker (`RunScript` fields: steps, interval_ms, payload_bytes, ...)."""
        self.needs("queue_worker")
        async with self.client() as client:
            return await client.start_run(RunScript(**script))

    async def open_run(self) -> str:
        """A run no worker executes: the scenario appends to it itself (`client().append_event`)."""
        async with self.client() as client:
            return await client.start_run(RunScript(), job=False)

    def consumer_config(self, **overrides: Any) -> ConsumerConfig:
        """Consumers of the stack's `api_url` (through the sse proxy) with bounded reads and an overall deadline."""
        return ConsumerConfig(**{"base_url": self.stack.info.api_url, "read_timeout_s": 10, "deadline_s": 60,
                                 "stream_path": self.stack.profile.stream_path, **overrides})

    def consume(self, run_id: str, n: int = 1, *, prefix: str = "c", from_seq: int = 0,
                open_stream: StreamOpener = open_lines, **config: Any) -> asyncio.Task[list[ConsumerOutcome]]:
        """`n` subscribers (`<prefix>0`, `<prefix>1`, ...) reading the run in the background; await the
        task for their outcomes. `config`: `ConsumerConfig` fields (`resume="last_event_id"`, ...);
        `open_stream`: the client library that reads the stream (`open_httpx_sse`: httpx-sse)."""
        if config.get("resume") == "last_event_id":
            self.needs("last_event_id")
        return asyncio.ensure_future(consume_all(self.consumer_config(**config), self.history, run_id, n,
                                                 from_seq=from_seq, prefix=prefix, open_stream=open_stream))

    def http(self, *, direct: bool = False) -> httpx.AsyncClient:
        """A plain HTTP client on the stack's API (through the sse proxy and nginx; `direct`: the first API
        replica itself), for checks of the wire: status codes, headers, error bodies
        (`async with scenario.http() as http:`)."""
        info = self.stack.info
        return httpx.AsyncClient(base_url=info.api_direct_url if direct else info.api_url, timeout=10,
                                 verify=tls_context())

    # -- what clients received so far --

    def conns(self, run_id: str | None = None, *, consumer: str | None = None, prefix: str | None = None) -> list[Conn]:
        return views.conns(self.history, run_id, consumer=consumer, prefix=prefix)

    def frames(self, run_id: str | None = None, *, consumer: str | None = None, prefix: str | None = None,
               type: str | None = None) -> list[Frame]:
        return views.frames(self.history, run_id, consumer=consumer, prefix=prefix, type=type)

    def seqs(self, run_id: str | None = None, *, consumer: str | None = None, prefix: str | None = None) -> list[int]:
        return views.seqs(self.history, run_id, consumer=consumer, prefix=prefix)

    def resumptions(self, run_id: str | None = None) -> list[views.Resumption]:
        return views.resumptions(self.history, run_id)

    def heartbeats(self, run_id: str | None = None, *, consumer: str | None = None, prefix: str | None = None) -> int:
        return views.heartbeats(self.history, run_id, consumer=consumer, prefix=prefix)

    # -- time --

    @staticmethod
    async def until(predicate: Callable[[], T | None], timeout: float, what: str, *,
                    poll_s: float | None = None) -> T:
        """Wait (bounded, `WaitTimeout` naming `what`) until `predicate()` is truthy; returns its value.
        The consumers keep reading meanwhile. Polls start at 20 ms and grow; `poll_s`: poll at this fixed
        interval instead (a moment that must be caught within milliseconds)."""
        if poll_s is None:
            return await until(predicate, timeout, what)
        return await until(predicate, timeout, what, interval=poll_s, max_interval=poll_s)

    async def caught_up(self, run_id: str, consumers: tuple[str, ...], timeout: float = 10.0) -> int:
        """Until each of `consumers` has received everything of the run published now (the database's
        highest published seq, read once: a run still publishing is not chased); returns that seq.
        Under a fault that holds the outbox, what was on the wire before it has then landed."""
        published = self.db.run(run_id).published_max or 0
        await self.until(lambda: all(max(self.seqs(run_id, consumer=c), default=0) >= published for c in consumers),
                         timeout, f"{', '.join(consumers)} to receive what was published (seq {published})")
        return published

    @staticmethod
    async def hold(seconds: float) -> None:
        """Let this much time pass: a duration the scenario is about (a fault window long against a poll
        interval or a heartbeat, a quiet period in which nothing may happen), never a wait for something
        to happen; that is `until`."""
        await asyncio.sleep(seconds)

    # -- judgement --

    def snapshot(self, run_ids: list[str]) -> Snapshot:
        """The runs' rows, the service's metric lines and its backlog gauge, as the checkers read them."""
        return snapshot_of(self.stack, run_ids)

    async def wait_for_outbox(self, run_ids: list[str], timeout: float = WAIT_S, *, finished: bool = True) -> None:
        """Until the runs have ended and the outbox published and marked all their events (bounded)."""
        await wait_for_outbox_async(self.stack.info.dsn, run_ids, timeout, finished=finished)

    async def assert_invariants(self, run_ids: list[str], names: tuple[str, ...] = DELIVERY, *,
                                wait_finished: bool = True, wait_s: float = WAIT_S, **opts: Any) -> Result:
        """`harness.scenario.assert_invariants` on this stack, off the event loop."""
        return await asyncio.to_thread(assert_invariants, self.stack, self, run_ids, names,
                                       wait_finished=wait_finished, wait_s=wait_s, **opts)
