"""When the outbox has converged: every run ended and each of its events published and marked (invariant
6's bound), read from the database directly."""
from __future__ import annotations

import asyncio
from collections.abc import Iterable

import psycopg

from harness.stack.waiting import wait_until

# Published and marked: the outbox's cursor is past lastSeq and no row waits, or the runbook's last
# resort removed the outbox row of a run it closed (what it left unpublished stays so).
_CONVERGED = """
SELECT count(*) FROM runs r LEFT JOIN run_outbox o ON o.runId = r.id
WHERE r.id = ANY(%(ids)s)
  AND (o.runId IS NULL AND r.state IN ('succeeded', 'failed', 'cancelled')
       OR o.nextSeq = r.lastSeq + 1
          AND NOT EXISTS (SELECT 1 FROM run_events e WHERE e.runId = r.id AND e.publishedAt IS NULL))
  AND (NOT %(finished)s OR r.state IN ('succeeded', 'failed', 'cancelled')
       OR EXISTS (SELECT 1 FROM run_events e WHERE e.runId = r.id AND e.type = 'RunFinished'))
"""


def wait_for_outbox(dsn: str, run_ids: Iterable[str], timeout: float = 30.0, *, finished: bool = True) -> None:
    """Wait until every one of these runs has ended (a terminal state or a RunFinished row) and the
    outbox has published and marked all its events (invariant 6's bound). A fresh run (nextSeq 1,
    lastSeq 0) has not ended. ``finished=False`` is for runs a scenario keeps unfinished on purpose
    (a stuck run, a run only the test appends to): it waits for the outbox to catch up only."""
    ids = sorted(set(run_ids))
    params = {"ids": ids, "finished": finished}

    def converged() -> bool:
        with psycopg.connect(dsn, autocommit=True, connect_timeout=5) as conn:
            row = conn.execute(_CONVERGED, params).fetchone()
        return row is not None and row[0] == len(ids)

    what = "to end and their outbox to converge" if finished else "to have their outbox converged"
    wait_until(converged, timeout, f"{len(ids)} run(s) {what}")


async def wait_for_outbox_async(dsn: str, run_ids: Iterable[str], timeout: float = 30.0, *,
                                finished: bool = True) -> None:
    """`wait_for_outbox` off the event loop, so the scenario's consumers keep reading meanwhile."""
    await asyncio.to_thread(wait_for_outbox, dsn, list(run_ids), timeout, finished=finished)
