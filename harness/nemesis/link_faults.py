"""Network faults on one link of the stack through toxiproxy (latency, reset_peer, limit_data, ...)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.history import History
from harness.stack import LocalStack, Toxic


@contextmanager
def toxic(stack: LocalStack, history: History, link: str, type: str, stream: str = "downstream",
          **attributes: Any) -> Iterator[Toxic]:
    """`link` is the logical name (`sse`, `pg_api`, `pg_outbox`, `pg_queue`); the toxic is removed on exit."""
    assert stack.api is not None
    proxy = stack.proxy_name(link)
    added = stack.api.add_toxic(proxy, Toxic(type=type, stream=stream, attributes=attributes))  # type: ignore[arg-type]
    try:
        with history.fault(f"toxic:{type}", link, {"stream": stream, **attributes}):
            yield added
    finally:
        stack.api.remove_toxic(proxy, added.name)
