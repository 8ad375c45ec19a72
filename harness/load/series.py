"""The load's figures from what it recorded: live lag samples, per-second series for the plots, and
per-phase tables. Pure: the streams' history (frames, connections), the snapshot's rows and the load's
start on the harness wall clock in, plain data out. Live or catch-up is frame_watch's rule, with the
connection's answer as its start (the Locust user used its request: a few ms apart)."""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from harness.checks.lag import percentile
from harness.history import ConnClosed, ConnOpened, Frame, History, of_kind
from harness.load.frame_watch import is_live, lag_ms
from harness.load.lag_classes import count_classes
from harness.load.phases import Phase
from harness.model import Snapshot

__all__ = ["LagPoint", "live_lags", "per_phase", "per_second"]


@dataclass(frozen=True)
class LagPoint:
    t: float  # seconds from the load's start (receipt)
    lag_ms: float
    live: bool


def live_lags(history: History, t0: float) -> list[LagPoint]:
    opened = {c.conn: c.wall for c in of_kind(history, ConnOpened)}
    return [LagPoint(f.wall - t0, lag_ms(f.event_ts, f.wall), is_live(f.event_ts, opened.get(f.conn, f.wall)))
            for f in of_kind(history, Frame) if f.event_ts is not None]


def _pcts(values: Sequence[float]) -> dict[str, float | None]:
    if not values:
        return {"p50": None, "p95": None, "p99": None, "max": None}
    return {"p50": percentile(values, 50), "p95": percentile(values, 95), "p99": percentile(values, 99),
            "max": max(values)}


def per_second(history: History, snapshot: Snapshot | None, t0: float, duration_s: float) -> list[dict[str, Any]]:
    """One row per second of the load (and after it, while frames still came)."""
    points = live_lags(history, t0)
    end = max([duration_s, *(p.t for p in points)])
    bins = int(end) + 1
    live: list[list[float]] = [[] for _ in range(bins)]
    delivered, appended, published, reconnects = ([0] * bins for _ in range(4))
    for p in points:
        if 0 <= p.t < bins:
            delivered[int(p.t)] += 1
            if p.live:
                live[int(p.t)].append(p.lag_ms)
    offset = (snapshot.clock_offset_s or 0.0) if snapshot else 0.0
    for run in (snapshot.runs.values() if snapshot else ()):
        for row in run.events:
            for at, counter in ((row.ts, appended), (row.published_at, published)):
                if at is not None and 0 <= at + offset - t0 < bins:
                    counter[int(at + offset - t0)] += 1
    spans = _connection_spans(history, t0, end)
    for c in of_kind(history, ConnOpened):
        if c.last_event_id is not None and 0 <= c.wall - t0 < bins:
            reconnects[int(c.wall - t0)] += 1
    return [{"t": k, **_pcts(live[k]), "live": len(live[k]), "delivered": delivered[k], "appended": appended[k],
             "published": published[k], "reconnects": reconnects[k],
             "open_streams": sum(1 for a, b in spans if a <= k + 0.5 < b)} for k in range(bins)]


def _connection_spans(history: History, t0: float, end: float) -> list[tuple[float, float]]:
    closed = {c.conn: c.wall - t0 for c in of_kind(history, ConnClosed)}
    return [(c.wall - t0, closed.get(c.conn, end)) for c in of_kind(history, ConnOpened) if c.status == 200]


def per_phase(history: History, t0: float, phases: Sequence[Phase]) -> list[dict[str, Any]]:
    """Per phase: its live lag figures and classes, catch-up frames and reconnects."""
    points = live_lags(history, t0)
    rows = []
    for phase in phases:
        last = phase is phases[-1]  # frames received after the load's end count in its last phase
        mine = [p for p in points if phase.start_s <= p.t < phase.end_s or last and p.t >= phase.end_s]
        lags = [p.lag_ms for p in mine if p.live]
        counts = count_classes(lags)
        reconnects = sum(1 for c in of_kind(history, ConnOpened) if c.last_event_id is not None
                         and phase.start_s <= c.wall - t0 < phase.end_s)
        figures = _pcts(lags)
        rows.append({"phase": phase.name, "start_s": round(phase.start_s, 3), "end_s": round(phase.end_s, 3),
                     "live_frames": len(lags), "catch_up_frames": sum(1 for p in mine if not p.live),
                     **{k: None if v is None else round(v, 1) for k, v in figures.items()},
                     "classes": counts.to_dict(), "p95_class": counts.percentile_class(95),
                     "p99_class": counts.percentile_class(99), "reconnects": reconnects})
    return rows
