"""Invariant 2: per connection, seq strictly increases, and the first event after connecting is
``cursor + 1`` when that event is published.

A first frame above ``cursor + 1`` fails when the snapshot shows ``cursor + 1`` published by the time
the frame arrived (plus option ``ordering_tolerance_s``, default 0.1); it is not this check's failure
when ``cursor + 1`` is missing from the log (invariant 5), and ``unknown`` without a snapshot.
"""

from __future__ import annotations

from typing import Any

from harness.checks._deliveries import Conn, combine, connections, publish_time, run_of
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.model import Snapshot
from harness.history import Frame

NAME = "ordering"


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    conns = [c for c in connections(history) if c.frames]
    if not conns:
        return unknown("no connection received a frame")
    return combine({c.conn: check_connection(c, snapshot, opts.ordering_tolerance_s) for c in conns})


def check_connection(conn: Conn, snapshot: Snapshot | None, tol: float = 0.1) -> Result:
    frames = [f for f in conn.frames if f.seq is not None]
    if not frames:
        return unknown("frames carry no seq", conn=conn.conn)
    prev: Frame | None = None
    for fr in frames:
        if prev is not None and fr.seq <= prev.seq:  # type: ignore[operator]
            return failed(problem="seq did not increase", **_at(conn, fr), previous_seq=prev.seq,
                          previous_wall=prev.wall)
        prev = fr
    return _check_first(conn, frames[0], snapshot, tol)


def _check_first(conn: Conn, first: Frame, snapshot: Snapshot | None, tol: float) -> Result:
    want = conn.cursor + 1
    assert first.seq is not None
    if first.seq == want:
        return passed(conn=conn.conn)
    if first.seq < want:
        return failed(problem="first frame at or below the cursor", **_at(conn, first), expected_seq=want)
    run = run_of(snapshot, conn.run_id)
    if run is None:
        return unknown("first frame skipped cursor+1 and no snapshot says whether it was published",
                       **_at(conn, first), expected_seq=want)
    if run.event(want) is None:
        return passed(conn=conn.conn, note=f"seq {want} is missing from the log (see gapless)")
    published = publish_time(snapshot, conn.run_id, want)
    if published is not None and published <= first.wall + tol:
        return failed(problem="first frame skipped cursor+1, which was published", **_at(conn, first),
                      expected_seq=want, expected_published_at=published)
    return unknown("first frame skipped cursor+1, whose publish time is unknown or later",
                   **_at(conn, first), expected_seq=want)


def _at(conn: Conn, fr: Frame) -> dict[str, Any]:
    return {"conn": conn.conn, "consumer": conn.consumer, "run_id": conn.run_id, "cursor": conn.cursor,
            "seq": fr.seq, "wall": fr.wall}
