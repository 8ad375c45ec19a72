"""nginx's proxy buffering switched live: the "Client flapping" incident's configuration (nginx's
defaults, which hold SSE frames back unless the service sends `X-Accel-Buffering: no`) or the SSE-ready one."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from harness.errors import ConfigError
from harness.history import History
from harness.stack import LocalStack, NginxMode

__all__ = ["nginx_buffering"]


@contextmanager
def nginx_buffering(stack: LocalStack, history: History, on: bool) -> Iterator[None]:
    """nginx reloaded with buffering on (its defaults) or off for the block, and back to its mode on exit.
    A reload keeps open connections on the old workers: the new mode applies to new connections."""
    nginx = stack.nginx
    if nginx is None:
        raise ConfigError("this stack runs no nginx: start it with `harness up --nginx on`")
    before = nginx.config.mode
    nginx.reload(NginxMode.BUFFERED if on else NginxMode.ON)
    try:
        with history.fault("buffering", "nginx", {"on": on}):
            yield
    finally:
        nginx.reload(before)
