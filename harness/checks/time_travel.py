"""Invariant 3: no time travel: no frame is received before its event was published.

The publish time of (run, seq) is the earliest publish log record when the snapshot has them, else the
row's ``publishedAt``. A frame received more than opts ``time_travel_tolerance_s`` (default 0.1 s)
before it fails. The outbox publishes on the bus *before* it marks ``publishedAt`` (at-least-once), so
a live frame may legitimately beat ``publishedAt`` by the time the mark takes: the tolerance covers
that; a scenario that delays the mark (a failpoint after publish) must widen it or supply publish
records. A frame whose event has no known publish time makes the verdict ``unknown``.
"""

from __future__ import annotations

from harness.checks._deliveries import MAX_LISTED, connections, publish_time
from harness.checks._result import HistoryLike, Opts, Result, failed, passed, unknown
from harness.checks.snapshot import Snapshot

NAME = "time_travel"


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: Opts | None = None) -> Result:
    opts = opts or {}
    tol = float(opts.get("time_travel_tolerance_s", 0.1))
    frames = [(c, f) for c in connections(history) for f in c.frames if f.seq is not None]
    if not frames:
        return unknown("no frames in the history")
    if snapshot is None:
        return unknown("no snapshot: publish times unknown", frames=len(frames))
    early, undecided = [], []
    for conn, fr in frames:
        assert fr.seq is not None
        published = publish_time(snapshot, conn.run_id, fr.seq)
        if published is None:
            undecided.append({"conn": conn.conn, "run_id": conn.run_id, "seq": fr.seq, "wall": fr.wall})
        elif fr.wall < published - tol:
            early.append({"conn": conn.conn, "consumer": conn.consumer, "run_id": conn.run_id, "seq": fr.seq,
                          "received_at": fr.wall, "published_at": published,
                          "early_by_s": round(published - fr.wall, 6)})
    if early:
        early.sort(key=lambda e: -e["early_by_s"])
        return failed(counterexample=early[0], early=early[:MAX_LISTED], early_count=len(early))
    if undecided:
        return unknown("frames for events with no known publish time", undecided=undecided[:MAX_LISTED],
                       undecided_count=len(undecided))
    return passed(frames=len(frames))
