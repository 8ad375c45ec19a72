"""Invariant 10: duplicate publishes are allowed and counted; duplicate deliveries are not.

Publishing is at-least-once (a crash between publish and mark re-publishes), so the publish records
may name a (run, seq) twice: counted in the evidence, never a failure. The stream must de-duplicate:
a consumer receiving a seq it already had and did not ask for again fails (see
``_deliveries.duplicate_deliveries`` for what "asked for again" means).
"""

from __future__ import annotations

from collections import Counter

from harness.checks._deliveries import MAX_LISTED, connections, duplicate_deliveries, sessions
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.model import Snapshot

NAME = "no_duplicate_delivery"


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    groups = sessions(connections(history))
    frames = sum(len(c.frames) for conns in groups.values() for c in conns)
    publishes = duplicate_publishes(snapshot)
    if frames == 0:
        return unknown("no frames in the history", duplicate_publishes=publishes)
    dups = [d for conns in groups.values() for d in duplicate_deliveries(conns)[0]]
    if dups:
        return failed(counterexample=dups[0], duplicated=dups[:MAX_LISTED], duplicate_deliveries=len(dups),
                      duplicate_publishes=publishes)
    return passed(frames=frames, duplicate_publishes=publishes)


def duplicate_publishes(snapshot: Snapshot | None) -> dict[str, object] | None:
    """How many (run, seq) were published more than once; None when no publish records were collected."""
    if snapshot is None or snapshot.publishes is None:
        return None
    counts = Counter((p.run_id, p.seq) for p in snapshot.publishes)
    extra = {f"{r}/{s}": n for (r, s), n in counts.items() if n > 1}
    return {"records": len(snapshot.publishes), "republished": len(extra),
            "examples": dict(list(extra.items())[:MAX_LISTED])}
