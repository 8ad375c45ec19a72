"""A thin async client for the service's run API that records every call as Jepsen ops.

Each call records an ``invoke`` and one completion (``ref`` = the invoke's index):
- ``ok``: a 2xx answer;
- ``fail``: the request certainly had no effect: a 4xx (404, 409 after the terminal, ...), a
  connection that was never established, or any error of a read;
- ``info``: the outcome is unknown: a timeout or a dropped connection after the request may have been
  sent, or a 5xx (the service may fail after its commit).
Op values are dicts with ``run_id`` so the history can be filtered by run; ``append`` / ``cancel``
completions carry the ``seq`` the service allocated. Calls return the completion ``Op``; they never
raise for an HTTP or network error.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import httpx

from harness.errors import HarnessError
from harness.history import History, Op
from harness.model import TERMINAL_TYPE
from harness.workload.tls import tls_context



@dataclass(frozen=True)
class RunScript:
    """The queue worker's script; None fields are left to the service's defaults."""

    steps: int | None = None
    interval_ms: int | None = None
    payload_bytes: int | None = None
    outcome: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True)
class ClientConfig:
    base_url: str
    timeout_s: float = 10.0
    connect_timeout_s: float = 5.0
    process: str = "client"


class RunsClient:
    def __init__(self, config: ClientConfig, history: History, client: httpx.AsyncClient | None = None) -> None:
        self.config = config
        self.history = history
        timeout = httpx.Timeout(config.timeout_s, connect=config.connect_timeout_s)
        self._owned = client is None
        self._client = client or httpx.AsyncClient(base_url=config.base_url, timeout=timeout, verify=tls_context())

    async def __aenter__(self) -> RunsClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        if self._owned:
            await self._client.aclose()

    async def create_run(self, script: RunScript | dict[str, Any] | None = None, job: bool = True) -> Op:
        """`job=False` creates the run without a queue job: only the caller appends to it."""
        body = script.to_json() if isinstance(script, RunScript) else dict(script or {})
        request: dict[str, Any] = {"script": body} if job else {"script": body, "job": False}
        return await self._call("create", "POST", "/api/agents/runs", request, dict(request))

    async def start_run(self, script: RunScript | dict[str, Any] | None = None, job: bool = True) -> str:
        """Create a run and return its id; a refusal is an error here, since nothing can follow it."""
        op = await self.create_run(script, job)
        if op.type != "ok" or "run_id" not in (op.value or {}):
            raise HarnessError(f"could not create a run at {self.config.base_url}: {op.error or op.value}")
        return str(op.value["run_id"])

    async def get_run(self, run_id: str) -> Op:
        return await self._call("read", "GET", f"/api/agents/runs/{run_id}", None, {"run_id": run_id}, read=True)

    async def append_event(self, run_id: str, type: str, payload: Any = None) -> Op:
        value = {"run_id": run_id, "type": type}
        body = {"type": type, "payload": payload if payload is not None else {}}
        return await self._call("append", "POST", f"/api/agents/runs/{run_id}/events", body, value)

    async def cancel(self, run_id: str) -> Op:
        value = {"run_id": run_id, "type": TERMINAL_TYPE}
        return await self._call("cancel", "POST", f"/api/agents/runs/{run_id}/cancel", {}, value)

    async def _call(self, f: str, method: str, path: str, body: Any, value: dict[str, Any],
                    read: bool = False) -> Op:
        inv = self.history.op(self.config.process, "invoke", f, value)
        try:
            resp = await self._client.request(method, self._url(path), json=body)
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:  # nothing reached the service
            return self._complete(inv, "fail", value, repr(exc))
        except httpx.HTTPError as exc:
            return self._complete(inv, "fail" if read else "info", value, repr(exc))
        return self._from_response(inv, value, resp, read)

    def _from_response(self, inv: Op, value: dict[str, Any], resp: httpx.Response, read: bool) -> Op:
        body = _json(resp)
        done = {**value, "status": resp.status_code}
        if resp.is_success:
            return self._complete(inv, "ok", {**done, **_ok_fields(body)})
        error = str(body.get("error", resp.text[:200]))
        definite = read or resp.status_code < 500
        return self._complete(inv, "fail" if definite else "info", done, error)

    def _complete(self, inv: Op, type: str, value: dict[str, Any], error: str | None = None) -> Op:
        return self.history.op(inv.process, type, inv.f, value, error, ref=inv.index)  # type: ignore[arg-type]

    def _url(self, path: str) -> str:
        # an injected client may have no base URL of its own
        return path if str(self._client.base_url) else self.config.base_url.rstrip("/") + path


def _json(resp: httpx.Response) -> dict[str, Any]:
    try:
        obj = resp.json()
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}


def _ok_fields(body: dict[str, Any]) -> dict[str, Any]:
    """Normalise the service's camelCase answer into the op value (``runId`` -> ``run_id``)."""
    out = {k: v for k, v in body.items() if k not in ("runId", "id")}
    run_id = body.get("runId", body.get("id"))
    if run_id is not None:
        out["run_id"] = str(run_id)
    return out


__all__ = ["ClientConfig", "RunScript", "RunsClient"]
