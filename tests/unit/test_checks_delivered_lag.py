"""delivered_lag: the median in the normal class, the p95 not critical, live frames only."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from _histories import WALL0, Builder, snapshot
from harness.checks import delivered_lag
from harness.history import Record
from harness.model import Snapshot


def _live(lags_ms: Sequence[float], fault: tuple[str, str] | None = None) -> tuple[list[Record], Snapshot]:
    """One connection opened at WALL0; event n written 1 s after it and received lags_ms[n-1] later."""
    b = Builder().open("a")
    rows = snapshot(len(lags_ms))
    events = []
    for n, lag in enumerate(lags_ms, start=1):
        written = 1.0 + n
        b.t = written + lag / 1000.0
        b.frame("a", n, "RunFinished" if n == len(lags_ms) else "RunStep")
        events.append(replace(rows.runs["r1"].events[n - 1], ts=WALL0 + written))
    b.close("a", "terminal")
    if fault is not None:
        b.fault(fault[0], 0.0, 100.0, target=fault[1])
    snap = replace(rows, runs={"r1": replace(rows.runs["r1"], events=tuple(events))}, clock_offset_s=0.0)
    return b.records, snap


def test_normal_lag_with_one_hiccup_passes() -> None:
    records, snap = _live([5.0] * 19 + [400.0])
    res = delivered_lag.check(records, snap)
    assert res.valid is True, res.evidence


def test_heartbeat_paced_delivery_fails_though_every_event_arrives() -> None:
    records, snap = _live([(n * 97) % 1000 for n in range(20)])  # spread over a 1 s heartbeat
    res = delivered_lag.check(records, snap)
    assert res.valid is False and res.evidence["basis"] == "p50"


def test_a_critical_tail_fails_under_a_normal_median() -> None:
    records, snap = _live([5.0] * 17 + [900.0] * 3)
    res = delivered_lag.check(records, snap)
    assert res.valid is False and res.evidence["p95_check"]["valid"] is False


def test_only_a_fault_on_the_delivery_path_excuses_lag() -> None:
    slow = [(n * 97) % 1000 for n in range(20)]
    assert delivered_lag.check(*_live(slow, ("toxic:latency", "sse"))).valid == "unknown"  # nothing steady left
    assert delivered_lag.check(*_live(slow, ("pause", "queue-worker-0"))).valid is False


def test_no_live_frame_is_unknown() -> None:
    b = Builder().open("a", from_seq=0)
    b.t = 10.0
    b.frame("a", 1, "RunFinished").close("a", "terminal")  # written before the connection: backfill
    rows = snapshot(1)
    snap = replace(rows, runs={"r1": replace(rows.runs["r1"], events=(replace(rows.runs["r1"].events[0], ts=WALL0 - 5),))})
    assert delivered_lag.check(b.records, snap).valid == "unknown"
