"""What a stream user judges per frame as it arrives: whether the frame is live or catch-up, its lag,
and whether its seq follows the consumer's cursor (a duplicate, a gap or an out-of-order frame is a
Locust failure naming the run and the seq). The full judgement comes after the run, from the recorded
frames, by the scenarios' checkers."""
from __future__ import annotations

__all__ = ["delivery_problem", "is_live", "lag_ms"]


def is_live(event_ts: float | None, requested_wall: float) -> bool:
    """A frame of an event written after its connection's request is live; an older one is catch-up
    (the backfill after a connect or reconnect), measured apart from live lag."""
    return event_ts is not None and event_ts >= requested_wall


def lag_ms(event_ts: float, received_wall: float) -> float:
    """Receipt minus the event's `ts` (one machine: the database's clock is the generator's)."""
    return (received_wall - event_ts) * 1000.0


def delivery_problem(run_id: str, cursor: int, seq: int | None) -> str | None:
    """None when `seq` is the next one after `cursor` (the consumer's last seq across reconnects)."""
    if seq is None:
        return f"run {run_id}: a frame without a seq after seq {cursor}"
    if seq == cursor:
        return f"run {run_id}: seq {seq} delivered twice"
    if seq < cursor:
        return f"run {run_id}: seq {seq} out of order (after seq {cursor})"
    if seq > cursor + 1:
        return f"run {run_id}: gap: seq {seq} after seq {cursor} (missing {cursor + 1}..{seq - 1})"
    return None
