"""`python -m reference_impl api`: the Starlette app (HTTP + SSE).

Routes and error shapes are docs/CONTRACTS.md's. Bad input is a 4xx with `{"error": ...}`, a
database outage is a 503, and no route ever leaks a traceback.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from psycopg_pool import AsyncConnectionPool
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import db, runs
from .admin import admin_routes, metrics_endpoint
from .backlog_gauge import sample_backlog
from .bus import Bus
from .config import Config
from .cursor import CursorError, resolve_cursor
from .event_log import RunNotFound, TerminalRun, append
from .events import TERMINAL_TYPE, iso_utc
from .failpoints import FailpointError
from .http_util import ApiError, error_response, parse_run_id, read_json
from .logs import Logger
from .script import ScriptError, parse_script
from .sse_response import SSEResponse
from .stream import RunStream, StreamDeps
from .validation import validate_event

__all__ = ["build_app"]

_log = Logger("api")
_start_log = Logger("start-run")


class Api:
    """The route handlers over one pool, one bus and the process's shutdown signal."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.pool: AsyncConnectionPool = db.make_pool(config)
        self.bus = Bus(config)
        self.shutdown = asyncio.Event()
        self.deps = StreamDeps(config, self.pool, self.bus, self.shutdown)

    @contextlib.asynccontextmanager
    async def lifespan(self, app: Starlette) -> AsyncIterator[None]:
        await self.pool.open(wait=False)  # start even while the database is down; requests get 503
        self.bus.start()
        # Sampled here too: a stuck or dead outbox worker cannot report its own backlog.
        gauge = asyncio.create_task(sample_backlog(self.config, self.shutdown), name="backlog-gauge")
        try:
            yield
        finally:
            self.shutdown.set()  # ends open streams at once instead of waiting out the grace period
            await gauge
            await self.bus.stop()
            await self.pool.close(timeout=2.0)

    async def create_run(self, request: Request) -> Response:
        body = await read_json(request, empty={})
        if not isinstance(body, dict):
            raise ApiError(400, "body must be a JSON object")
        try:
            script = parse_script(body.get("script"))
        except ScriptError as exc:
            raise ApiError(400, str(exc)) from None
        with_job = body.get("job", True)
        if not isinstance(with_job, bool):
            raise ApiError(400, "job must be true or false")
        async with self.pool.connection() as conn:
            run_id = await runs.create_run(conn, script.to_json(), with_job=with_job)
        _start_log.info("start-run", run_id, script=script.to_json(), job=with_job)
        return JSONResponse({"runId": run_id, "state": "queued"}, status_code=201)

    async def get_run(self, request: Request) -> Response:
        run_id = parse_run_id(request.path_params["run_id"])
        async with self.pool.connection() as conn:
            row = await runs.get_run(conn, run_id)
        if row is None:
            raise ApiError(404, f"run {run_id} not found")
        return JSONResponse({"id": row.id, "state": row.state, "lastSeq": row.last_seq,
                             "startedAt": row.started_at and iso_utc(row.started_at),
                             "finishedAt": row.finished_at and iso_utc(row.finished_at)})

    async def append_event(self, request: Request) -> Response:
        run_id = parse_run_id(request.path_params["run_id"])
        event_type, payload = validate_event(await read_json(request))
        return await self._append(run_id, event_type, payload, status=201)

    async def cancel(self, request: Request) -> Response:
        run_id = parse_run_id(request.path_params["run_id"])
        return await self._append(run_id, TERMINAL_TYPE, {"status": "cancelled"}, status=200)

    async def _append(self, run_id: str, event_type: str, payload: Any, *, status: int) -> Response:
        try:
            async with self.pool.connection() as conn:
                appended = await append(conn, run_id, event_type, payload)
        except RunNotFound as exc:
            raise ApiError(404, str(exc)) from None
        except TerminalRun as exc:
            raise ApiError(409, str(exc)) from None
        return JSONResponse({"runId": run_id, "seq": appended.seq}, status_code=status)

    async def stream(self, request: Request) -> Response | SSEResponse:
        run_id = parse_run_id(request.path_params["run_id"])
        try:
            cursor = resolve_cursor(request.query_params.get("fromSeq"), request.headers.get("last-event-id"))
        except CursorError as exc:
            raise ApiError(400, str(exc)) from None
        async with self.pool.connection() as conn:
            status = await runs.stream_status(conn, run_id, cursor.value)
        if status is None:
            raise ApiError(404, f"run {run_id} not found")
        if status.finished_for(cursor.value):
            return Response(status_code=204)  # a browser's EventSource stops reconnecting on 204
        stream = RunStream(self.deps, run_id, cursor)
        sub = stream.open()  # subscribe before the backfill reads anything
        stops = {"slow-consumer": sub.overflowed, "shutdown": self.shutdown}
        return SSEResponse(stream.frames(), stream.close, stops)

    async def healthz(self, request: Request) -> Response:
        try:
            async with self.pool.connection(timeout=2.0) as conn:
                await conn.execute("SELECT 1")
        except Exception as exc:
            return JSONResponse({"ok": False, "error": str(exc) or repr(exc)}, status_code=503)
        return JSONResponse({"ok": True, "bus": self.bus.connected})


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 204 or exc.status_code == 304:
        return Response(status_code=exc.status_code)
    return error_response(exc.status_code, str(exc.detail))


async def _on_exception(request: Request, exc: Exception) -> Response:
    if db.is_outage(exc):
        return error_response(503, f"database unavailable: {exc}")
    if isinstance(exc, FailpointError):
        return error_response(500, str(exc))
    _log.error("api.unhandled", path=request.url.path, error=repr(exc))
    return error_response(500, "internal error")


def build_app(config: Config) -> Starlette:
    api = Api(config)
    run = "/api/agents/runs/{run_id}"
    routes = [
        Route("/api/agents/runs", api.create_run, methods=["POST"]),
        Route(run, api.get_run, methods=["GET"]),
        Route(run + "/events", api.append_event, methods=["POST"]),
        Route(run + "/cancel", api.cancel, methods=["POST"]),
        Route(run + "/stream", api.stream, methods=["GET"]),
        Route("/healthz", api.healthz, methods=["GET"]),
        Route("/metrics", metrics_endpoint, methods=["GET"]),
        *admin_routes(config.admin_token),
    ]
    handlers = {ApiError: _on_api_error, HTTPException: _on_http_exception, Exception: _on_exception}
    app = Starlette(routes=routes, exception_handlers=handlers, lifespan=api.lifespan)
    app.state.api = api
    return app
