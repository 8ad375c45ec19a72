"""Process plumbing shared by the roles: signals, uvicorn servers, the workers' ops listener.

SIGTERM/SIGINT set one stop event and the process exits 0 after a bounded drain. uvicorn's own
signal capture is disabled: it would re-raise the signal after shutdown (exit status 143).
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from .admin import admin_routes, metrics_endpoint
from .config import Config
from .http_util import ApiError, error_response

__all__ = ["Server", "install_stop_signals", "ops_app", "serve_worker", "uvicorn_config"]

GRACE_S = 5.0


class Server(uvicorn.Server):
    """uvicorn without its signal handling: the process's stop event drives `should_exit`."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def uvicorn_config(app: Any, host: str, port: int) -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_config=None, access_log=False,
                          timeout_graceful_shutdown=int(GRACE_S), lifespan="on", server_header=False)


def install_stop_signals(stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)


async def _on_api_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, ApiError)
    return error_response(exc.status, exc.message)


def ops_app(config: Config, healthy: Callable[[], bool]) -> Starlette:
    """The workers' ops listener: /healthz, /metrics and /admin/failpoints."""

    async def healthz(request: Request) -> Response:
        ok = healthy()
        return JSONResponse({"ok": ok}, status_code=200 if ok else 503)

    routes = [Route("/healthz", healthz), Route("/metrics", metrics_endpoint), *admin_routes(config.admin_token)]
    return Starlette(routes=routes, exception_handlers={ApiError: _on_api_error})


async def serve_worker(config: Config, work: Callable[[asyncio.Event], Awaitable[None]],
                       healthy: Callable[[], bool]) -> None:
    """Run a worker loop (and its ops listener when ADMIN_PORT is set) until SIGTERM/SIGINT."""
    stop = asyncio.Event()
    install_stop_signals(stop)
    server = None
    if config.admin_port is not None:
        server = Server(uvicorn_config(ops_app(config, healthy), config.admin_host, config.admin_port))
        ops = asyncio.create_task(server.serve(), name="ops-listener")
    try:
        await work(stop)
    finally:
        if server is not None:
            server.should_exit = True
            await asyncio.wait([ops], timeout=GRACE_S)


async def serve_api(config: Config, app: Starlette, shutdown: asyncio.Event) -> None:
    stop = asyncio.Event()
    install_stop_signals(stop)
    server = Server(uvicorn_config(app, config.api_host, config.api_port))
    serving = asyncio.create_task(server.serve(), name="api")
    await asyncio.wait([serving, asyncio.ensure_future(stop.wait())], return_when=asyncio.FIRST_COMPLETED)
    shutdown.set()  # close SSE streams now; uvicorn would otherwise wait out its grace period
    server.should_exit = True
    await serving
    if not server.started:
        raise SystemExit(f"api could not listen on {config.api_host}:{config.api_port}")
