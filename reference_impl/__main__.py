"""`python -m reference_impl {migrate|api|outbox-worker|queue-worker}`.

A bad role or configuration value is one line on stderr and exit status 2, never a traceback.
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from .config import Config, ConfigError, load_config
from .failpoints import FailpointSpecError, registry
from .logs import install_json_logging, set_service

ROLES = ("migrate", "api", "outbox-worker", "queue-worker")
USAGE = f"usage: python -m reference_impl {{{'|'.join(ROLES)}}}"


def _run_migrate(config: Config) -> None:
    from .migrate import migrate

    asyncio.run(migrate(config))


def _run_api(config: Config) -> None:
    from .api import build_app
    from .runtime import serve_api

    app = build_app(config)
    _run_async(serve_api(config, app, app.state.api.shutdown))


def _run_outbox(config: Config) -> None:
    from .outbox_publisher import OutboxPublisher
    from .runtime import serve_worker

    worker = OutboxPublisher(config)
    _run_async(serve_worker(config, worker.run, lambda: worker.listening))


def _run_queue(config: Config) -> None:
    from .queue_worker import QueueWorker
    from .runtime import serve_worker

    worker = QueueWorker(config)
    _run_async(serve_worker(config, worker.run, lambda: worker.listening))


def _run_async(main: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop  # uvicorn[standard] brings it; it roughly halves the per-event overhead

        uvloop.run(main)
    except ImportError:
        asyncio.run(main)


RUNNERS: dict[str, Callable[[Config], None]] = {
    "migrate": _run_migrate, "api": _run_api, "outbox-worker": _run_outbox, "queue-worker": _run_queue,
}


def main(argv: Sequence[str]) -> int:
    if len(argv) != 1 or argv[0] not in ROLES:
        given = " ".join(argv) or "(none)"
        print(f"error: unknown role {given!r}; {USAGE}", file=sys.stderr)
        return 2
    role = argv[0]
    try:
        config = load_config(os.environ, role)
        registry.load(config.failpoints)
    except (ConfigError, FailpointSpecError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    set_service(config.service_name)
    install_json_logging()
    try:
        RUNNERS[role](config)
    except KeyboardInterrupt:
        pass
    except Exception as exc:  # e.g. migrate against an unreachable database: one line, exit 1
        print(f"error: {role} failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
