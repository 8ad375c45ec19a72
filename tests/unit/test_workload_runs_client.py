"""RunsClient records Jepsen ops: ok on 2xx, fail when certainly not applied, info when unknown."""

from __future__ import annotations

import asyncio
import json

import httpx

from harness.checks import append_after_terminal
from harness.history import History, Op, of_kind, pair_ops
from harness.workload import ClientConfig, RunScript, RunsClient


class FakeService:
    def __init__(self) -> None:
        self.seq = 0
        self.finished = False

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if path == "/api/agents/runs":
            return httpx.Response(201, json={"runId": "r1", "state": "queued", "echo": json.loads(request.content)})
        if path.endswith("/slow"):
            raise httpx.ReadTimeout("timed out", request=request)
        if path == "/api/agents/runs/r1":
            return httpx.Response(200, json={"id": "r1", "state": "started", "lastSeq": self.seq})
        if path == "/api/agents/runs/nope/events":
            return httpx.Response(404, json={"error": "unknown run"})
        if path.startswith("/api/agents/runs/boom"):
            return httpx.Response(503, text="upstream down")
        if self.finished:
            return httpx.Response(409, json={"error": "Non-monotonic seq append: run r1 is already cancelled"})
        self.seq += 1
        self.finished = path.endswith("/cancel")
        return httpx.Response(200 if self.finished else 201, json={"runId": "r1", "seq": self.seq})


def _run(coro_fn) -> History:  # type: ignore[no-untyped-def]
    history = History()

    async def main() -> None:
        async with httpx.AsyncClient(transport=httpx.MockTransport(FakeService()), base_url="http://svc") as http:
            async with RunsClient(ClientConfig("http://svc"), history, http) as client:
                await coro_fn(client)

    asyncio.run(main())
    return history


def test_ops_for_a_run_lifecycle() -> None:
    async def script(client: RunsClient) -> None:
        created = await client.create_run(RunScript(steps=3, interval_ms=10))
        assert created.type == "ok" and created.value["run_id"] == "r1"
        assert created.value["echo"] == {"script": {"steps": 3, "interval_ms": 10}}
        assert (await client.append_event("r1", "RunStep", {"n": 1})).value["seq"] == 1
        assert (await client.cancel("r1")).value == {"run_id": "r1", "type": "RunFinished", "status": 200, "seq": 2}
        late = await client.append_event("r1", "RunStep")
        assert late.type == "fail" and late.value["status"] == 409 and "Non-monotonic seq append" in str(late.error)
        assert (await client.get_run("r1")).value["lastSeq"] == 2

    history = _run(script)
    ops = of_kind(history, Op)
    assert [o.index for o in ops] == list(range(10))
    assert all(done is not None and done.ref == inv.index for inv, done in pair_ops(ops))
    assert append_after_terminal.check(history, None).valid is True


def test_unknown_outcomes_are_info_and_rejections_fail() -> None:
    async def script(client: RunsClient) -> None:
        assert (await client.append_event("nope", "RunStep")).type == "fail"
        assert (await client.append_event("boom", "RunStep")).type == "info"  # a 5xx may follow a commit
        assert (await client.get_run("boom")).type == "fail"  # a read changes nothing
        assert (await client._call("append", "POST", "/slow", {}, {"run_id": "x"})).type == "info"

    _run(script)


def test_connection_refused_is_fail() -> None:
    async def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=request)

    history = History()

    async def main() -> Op:
        async with httpx.AsyncClient(transport=httpx.MockTransport(refuse), base_url="http://svc") as http:
            return await RunsClient(ClientConfig("http://svc"), history, http).append_event("r1", "RunStep")

    done = asyncio.run(main())
    assert done.type == "fail" and "refused" in (done.error or "")
