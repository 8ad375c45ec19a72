"""Which fault windows may excuse an effect: a fault excuses only what happens on the path it acts on.

Paths, from the client back to the database:
- ``stream``: an open SSE connection and its heartbeats: the ``sse`` link, nginx, the API processes.
- ``publish``: the outbox's path from an appended row to the bus: the ``pg_outbox`` link, the outbox
  workers, PostgreSQL itself, row locks on ``run_outbox``, terminated outbox sessions.
- ``delivery``: an event's whole way from its row to a client: ``publish`` and ``stream``, plus the
  API's own database link (``pg_api``: LISTEN and backfill).
- ``commit``: an append's way to its commit: the appenders' database links (``pg_queue``, ``pg_api``)
  and PostgreSQL. A row's ``ts`` is taken inside the INSERT, so a slowed link delays the commit that
  makes the event visible: lag measured from ``ts`` grows without any fault of the outbox or stream.
- ``append``: the appenders themselves and their way to the database: the API and queue-worker
  processes, their links, PostgreSQL, terminated sessions. A crashed or cut appender may retry an
  insert, so its own word on what it inserted may count an attempt twice.
A pause or kill of the queue worker excuses none but ``append``: it appends later, with a later ``ts``,
and is no reason for an SSE stream to fall silent.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

from harness.history import FaultWindow

Path = Literal["stream", "publish", "delivery", "commit", "append"]
PATHS: tuple[str, ...] = ("stream", "publish", "delivery", "commit", "append")

_LINKS: dict[str, frozenset[str]] = {
    "sse": frozenset({"stream", "delivery"}),
    "pg_api": frozenset({"delivery", "commit", "append"}),
    "pg_outbox": frozenset({"publish", "delivery"}),
    "pg_queue": frozenset({"commit", "append"}),
    "pg": frozenset({"publish", "delivery", "commit", "append"}),  # one link carrying every role's traffic
}
_PROCESS_PREFIXES: dict[str, frozenset[str]] = {
    "api": frozenset({"stream", "delivery", "append"}),
    "nginx": frozenset({"stream", "delivery"}),
    "outbox": frozenset({"publish", "delivery"}),
    "queue": frozenset({"append"}),
    "postgres": frozenset({"publish", "delivery", "commit", "append"}),
    "all": frozenset({"stream", "publish", "delivery", "append"}),  # one process doing every role
    "*": frozenset({"publish", "delivery", "append"}),  # every database session (terminate_backends)
}


def paths_of(fault: FaultWindow) -> frozenset[str]:
    """The paths a recorded fault acts on, from its name and target."""
    if fault.name == "lock_outbox":
        return frozenset({"publish", "delivery"})
    if fault.target in _LINKS:
        return _LINKS[fault.target]
    for prefix, paths in _PROCESS_PREFIXES.items():
        if fault.target == prefix or fault.target.startswith(prefix):
            return paths
    return frozenset()


def faults_on(faults: Iterable[FaultWindow], path: Path) -> list[FaultWindow]:
    """The windows among ``faults`` that act on ``path``."""
    return [f for f in faults if path in paths_of(f)]


__all__ = ["PATHS", "Path", "faults_on", "paths_of"]
