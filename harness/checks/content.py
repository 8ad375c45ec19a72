"""Invariant: every frame says what the database holds: a client gets the event that was appended.

For each frame with a seq: its ``id:`` equals its data's ``seq``; its data's ``runId`` is the run the
connection asked for; and against the run's row at that seq (the snapshot): the frame's ``type`` is the
row's, its event ``ts`` is the row's within ``TS_TOLERANCE_S`` (the wire carries microseconds), and its
payload digest is the row's. A frame for a seq the log does not hold fails, and so does a frame whose
parsed data lacks the ``ts`` or ``payload`` the contract puts there. A field absent on either side
otherwise (a recorder that does not keep it, a snapshot without digests) is skipped and counted under
``skipped`` in the evidence; a frame of a run the snapshot does not hold, or any frame without a
snapshot, leaves the verdict ``unknown`` unless something already failed.
"""

from __future__ import annotations

from typing import Any

from harness.checks._deliveries import MAX_LISTED, Conn, connections, run_of
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.model import RunSnapshot, Snapshot
from harness.history import Frame

NAME = "content"
TS_TOLERANCE_S = 0.001


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    frames = [(c, f) for c in connections(history) for f in c.frames if f.seq is not None]
    if not frames:
        return unknown("no frames in the history")
    wrong: list[dict[str, Any]] = []
    skipped: dict[str, int] = {}
    unjudged = 0
    for conn, fr in frames:
        run = run_of(snapshot, conn.run_id)
        problem = frame_problem(conn, fr, run, skipped)
        if problem is not None:
            wrong.append(problem)
        unjudged += int(run is None)
    evidence: dict[str, Any] = {"frames": len(frames), "skipped": skipped}
    if wrong:
        return failed(counterexample=wrong[0], wrong=wrong[:MAX_LISTED], wrong_count=len(wrong), **evidence)
    if unjudged:
        return unknown("frames of runs the snapshot does not hold", unjudged=unjudged, **evidence)
    return passed(**evidence)


def frame_problem(conn: Conn, fr: Frame, run: RunSnapshot | None, skipped: dict[str, int]) -> dict[str, Any] | None:
    """What is wrong with one frame (None: nothing); fields that cannot be compared go to ``skipped``."""
    base = {"conn": conn.conn, "consumer": conn.consumer, "run_id": conn.run_id, "seq": fr.seq, "wall": fr.wall}

    def both(field: str, wire: Any, truth: Any) -> bool:
        if wire is None or truth is None:
            skipped[field] = skipped.get(field, 0) + 1
            return False
        return True

    if both("id", fr.id_seq, fr.data_seq) and fr.id_seq != fr.data_seq:
        return {"problem": "id: and data.seq differ", **base, "id": fr.id_seq, "data_seq": fr.data_seq}
    if both("run_id", fr.data_run_id, conn.run_id) and fr.data_run_id != conn.run_id:
        return {"problem": "frame of another run", **base, "data_run_id": fr.data_run_id}
    if run is None:
        return None
    assert fr.seq is not None
    row = run.event(fr.seq)
    if row is None:
        return {"problem": "frame for a seq the log does not hold", **base, "type": fr.type, "last_seq": run.last_seq}
    if fr.type != row.type:
        return {"problem": "type differs from the database row", **base, "type": fr.type, "row_type": row.type}
    # A recorder that parsed the frame's data (it has data.seq) saw every field the contract puts there:
    # a missing ts or payload is the server's omission, not a recorder's.
    parsed = fr.data_seq is not None
    if parsed and fr.payload_digest is None and row.payload_digest is not None:
        return {"problem": "the frame's data carries no payload", **base, "row_payload_digest": row.payload_digest}
    if parsed and fr.event_ts is None and row.ts is not None:
        return {"problem": "the frame's data carries no ts", **base, "row_ts": row.ts}
    if both("ts", fr.event_ts, row.ts) and abs(fr.event_ts - row.ts) > TS_TOLERANCE_S:  # type: ignore[operator]
        return {"problem": "ts differs from the database row", **base, "ts": fr.event_ts, "row_ts": row.ts}
    if both("payload", fr.payload_digest, row.payload_digest) and fr.payload_digest != row.payload_digest:
        return {"problem": "payload differs from the database row", **base, "payload_digest": fr.payload_digest,
                "row_payload_digest": row.payload_digest}
    return None
