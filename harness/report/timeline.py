"""One PNG per scenario (matplotlib, Agg): what happened and how late it arrived, Jepsen style.

Top, the timeline: a lane per fault window (a bar from injection to heal) and per consumer (its
connections as lines, each frame a tick, heartbeats as dots, a close by error or timeout as a red x),
with each counterexample of an invariant that did not hold starred on its consumer's lane and drawn
as a red dashed line through the lag plot too. Bottom left, delivered lag per live frame (receipt
minus the event row's `ts`, as `harness.checks.lag` computes it for `delivered_lag`) over the same
time axis, fault windows shaded (darker: on the delivery path, the ones that excuse lag), the
runbook's 100 ms (warning) and 500 ms (critical) lines. Bottom right, the lag's distribution (CDF).
Times are seconds since the scenario's first record, on the history's wall clock.

A figure takes ~0.2 s (fixed margins, no layout engine, 96 dpi): ~15 s for a full run's ~80, drawn in
the harness's process (a process pool did not pay for its workers' imports on a 2-core machine).
"""
from __future__ import annotations

import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display: files only, whatever MPLBACKEND says

from matplotlib.axes import Axes  # noqa: E402  (after the backend is chosen)
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.lines import Line2D  # noqa: E402
from matplotlib.patches import Patch  # noqa: E402

from harness.checks.fault_scope import paths_of  # noqa: E402
from harness.checks.lag import NORMAL_MS, WARNING_MS, LagSample, lag_class, lag_samples, percentile  # noqa: E402
from harness.history import ConnClosed, ConnOpened, FaultWindow, Frame, Heartbeat, Record, load_jsonl  # noqa: E402
from harness.model import Snapshot  # noqa: E402

__all__ = ["FIGURE", "Mark", "counterexample_marks", "render_figure"]

FIGURE = "figure.png"  # in the scenario's folder, beside its history
MAX_LANES = 24  # consumers beyond these are left out of the timeline (the lag plots keep every frame)
DPI = 96
_BAD_CLOSE = {"error", "timeout"}
_CLASS_COLOUR = {"normal": "#2a6fdb", "warning": "#e08a00", "critical": "#b3261e"}
_FAULT, _FAULT_OTHER, _FRAME, _BEAT, _CONN, _RED = "#e8a33d", "#bbbbbb", "#2a6fdb", "#2e9e4f", "#888888", "#b3261e"


@dataclass(frozen=True)
class Mark:
    """A counterexample drawn on the timeline: the invariant, when (wall clock), on whose lane."""

    invariant: str
    wall: float
    consumer: str | None
    lag_ms: float | None = None  # a lag sample's (the lag checks' counterexample): ringed on the lag plot


def render_figure(folder: Path) -> Path | None:
    """`folder/figure.png` from its history.jsonl (and snapshot.json, checks.json when there); None when the
    history is missing, unreadable or empty."""
    try:
        records = load_jsonl(folder / "history.jsonl")
    except (OSError, ValueError, KeyError, TypeError):
        return None
    snapshot = _read_snapshot(folder / "snapshot.json")
    checks = _read_json(folder / "checks.json").get("checks") or {}
    figure = draw(records, snapshot, counterexample_marks(checks, records))
    if figure is None:
        return None
    out = folder / FIGURE
    figure.savefig(out, dpi=DPI)
    return out


def counterexample_marks(checks: dict[str, Any], records: Iterable[Record]) -> list[Mark]:
    """Where each invariant that did not hold has its counterexample: its `wall` or `time` (epoch seconds),
    else the end of the connection it names; its consumer's lane when it names one."""
    records = list(records)
    conns = {r.conn: r for r in records if isinstance(r, (ConnOpened, ConnClosed))}  # the close wins: later
    marks = []
    for name, entry in checks.items():
        example = entry.get("counterexample") if isinstance(entry, dict) and entry.get("valid") is not True else None
        if not isinstance(example, dict):
            continue
        conn = conns.get(str(example.get("conn")))
        wall = next((float(example[k]) for k in ("wall", "time") if _is_epoch(example.get(k))), None)
        wall = wall if wall is not None else (conn.wall if conn is not None else None)
        if wall is not None:
            consumer = example.get("consumer") or (conn.consumer if conn is not None else None)
            lag_ms = example.get("lag_ms")
            marks.append(Mark(name, wall, str(consumer) if consumer else None,
                              float(lag_ms) if isinstance(lag_ms, (int, float)) else None))
    return marks


def draw(records: Sequence[Record], snapshot: Snapshot | None, marks: Sequence[Mark]) -> Figure | None:
    faults = [r for r in records if isinstance(r, FaultWindow)]
    consumers = sorted({r.consumer for r in records if isinstance(r, (ConnOpened, Frame, ConnClosed, Heartbeat))})
    times = [t for r in records for t in _times(r)]
    if not times or not (faults or consumers):
        return None
    t0, t1 = min(times), max(times)
    samples = lag_samples(records, snapshot, "delivery")
    shown = consumers[:MAX_LANES]
    lanes = len(faults) + len(shown)
    # Fixed margins in inches (a layout engine would triple the time per figure): room for the lane
    # labels on the left, the title and legend above the timeline, the tick labels and titles between.
    top_h, lanes_h, gap_h, lag_h, bottom_h = 0.75, 0.3 + 0.22 * lanes, 0.6, 2.3, 0.75
    height = top_h + lanes_h + gap_h + lag_h + bottom_h
    longest = max(len(_short(label)) for label in [f"{f.name} {f.target}" for f in faults] + shown)
    left_w = min(max(0.3 + 0.07 * longest, 0.8), 2.1)  # ~0.07 in per character of an 8 pt label
    figure = Figure(figsize=(11, height))
    grid = figure.add_gridspec(2, 3, height_ratios=[lanes_h, lag_h], left=left_w / 11, right=1 - 0.2 / 11,
                               top=1 - top_h / height, bottom=bottom_h / height, hspace=gap_h / ((lanes_h + lag_h) / 2),
                               wspace=0.35)
    timeline = figure.add_subplot(grid[0, :])
    lag = figure.add_subplot(grid[1, :2], sharex=timeline)
    cdf = figure.add_subplot(grid[1, 2])
    _draw_timeline(timeline, records, faults, shown, marks, t0, t1)
    if len(consumers) > len(shown):
        timeline.set_title(f"{len(consumers) - len(shown)} more consumers not drawn", loc="right", fontsize=8, y=1.0)
    _draw_lag(lag, samples, faults, marks, t0)
    _draw_cdf(cdf, samples)
    return figure


def _draw_timeline(ax: Axes, records: Sequence[Record], faults: list[FaultWindow], consumers: list[str],
                   marks: Sequence[Mark], t0: float, t1: float) -> None:
    labels = [_short(f"{f.name} {f.target}") for f in faults] + [_short(c) for c in consumers]
    lane = {c: len(faults) + i for i, c in enumerate(consumers)}
    for i, f in enumerate(faults):
        end = f.end_wall or t1
        ax.barh(i, max(end - f.start_wall, (t1 - t0) / 400), left=f.start_wall - t0, height=0.6,
                color=_FAULT if "delivery" in paths_of(f) else _FAULT_OTHER, edgecolor="none")
        if not f.end_wall:
            ax.annotate("never healed", (end - t0, i), fontsize=7, ha="right", va="center")
    closes = {r.conn: r for r in records if isinstance(r, ConnClosed)}
    for r in records:
        if isinstance(r, ConnOpened) and r.consumer in lane:
            close = closes.get(r.conn)
            ax.hlines(lane[r.consumer], r.wall - t0, (close.wall if close else t1) - t0, color=_CONN, lw=1.2)
            if close is not None and close.reason in _BAD_CLOSE:
                ax.plot(close.wall - t0, lane[r.consumer], "x", color=_RED, ms=6, mew=1.5)
    for kind, style in ((Frame, "frames"), (Heartbeat, "beats")):
        xs, ys = _points(records, kind, lane, t0)
        if style == "frames":
            ax.vlines(xs, [y - 0.32 for y in ys], [y + 0.32 for y in ys], color=_FRAME, lw=0.7)
        else:
            ax.plot(xs, ys, "o", color=_BEAT, ms=3.5, ls="none")
    for m in marks:
        ax.axvline(m.wall - t0, color=_RED, ls="--", lw=1)
        ax.plot(m.wall - t0, lane.get(m.consumer or "", -0.7), "*", color=_RED, ms=11, mec="white", mew=0.5,
                clip_on=False)
    ax.set_yticks(range(len(labels)), labels, fontsize=8)
    ax.set_ylim(len(labels) - 0.4, -0.9)
    ax.set_xlim(-(t1 - t0) * 0.01, (t1 - t0) * 1.01 + 1e-3)
    ax.tick_params(axis="x", labelsize=8, labelbottom=True)
    ax.grid(axis="x", color="#eeeeee")
    ax.set_axisbelow(True)
    ax.set_title("Faults and consumers", loc="left", fontsize=10, fontweight="bold", y=1.0, pad=22)
    ax.legend(handles=_timeline_legend(marks), fontsize=7, ncol=7, loc="lower left", bbox_to_anchor=(0, 1.0),
              frameon=False, borderaxespad=0.2, handlelength=1.5, columnspacing=1.2)


def _timeline_legend(marks: Sequence[Mark]) -> list[Any]:
    handles: list[Any] = [
        Patch(color=_FAULT, label="fault on the delivery path"), Patch(color=_FAULT_OTHER, label="other fault"),
        Line2D([], [], color=_CONN, lw=1.2, label="connection"),
        Line2D([], [], color=_FRAME, marker="|", ls="none", ms=8, label="frame"),
        Line2D([], [], color=_BEAT, marker="o", ls="none", ms=3.5, label="heartbeat"),
        Line2D([], [], color=_RED, marker="x", ls="none", label="closed by error/timeout")]
    if marks:
        names = ", ".join(sorted({m.invariant for m in marks}))
        handles.append(Line2D([], [], color=_RED, marker="*", ls="--", ms=9, label=f"counterexample: {names}"))
    return handles


def _draw_lag(ax: Axes, samples: list[LagSample], faults: list[FaultWindow], marks: Sequence[Mark], t0: float) -> None:
    for f in faults:
        end = f.end_wall if f.end_wall else max((s.time for s in samples), default=f.start_wall)
        on_path = "delivery" in paths_of(f)
        ax.axvspan(f.start_wall - t0, end - t0, color=_FAULT if on_path else _FAULT_OTHER, alpha=0.3 if on_path else 0.25,
                   lw=0)
    for m in marks:
        ax.axvline(m.wall - t0, color=_RED, ls="--", lw=1)
        if m.lag_ms is not None:
            ax.plot(m.wall - t0, _floor(m.lag_ms), "o", mfc="none", mec=_RED, ms=11, mew=1.5)
    ax.set_title("Delivered lag per live frame (event ts → receipt)", loc="left", fontsize=10, fontweight="bold", y=1.0)
    ax.set_xlabel("seconds since the scenario's first record", fontsize=8)
    ax.set_ylabel("ms", fontsize=8)
    ax.tick_params(labelsize=8)
    _threshold_lines(ax.axhline)
    if not samples:
        ax.text(0.5, 0.7, "no live frames: no delivered lag", transform=ax.transAxes, ha="center", color="#666")
        ax.set_yscale("log")
        ax.set_ylim(_lag_range(samples))
        return
    ax.scatter([s.time - t0 for s in samples], [_floor(s.lag_ms) for s in samples], s=7, lw=0,
               c=[_CLASS_COLOUR[lag_class(s.lag_ms)] for s in samples])
    ax.set_yscale("log")
    ax.set_ylim(_lag_range(samples))
    ax.legend(fontsize=7, loc="upper left")


def _draw_cdf(ax: Axes, samples: list[LagSample]) -> None:
    ax.set_title("Lag distribution (CDF)", loc="left", fontsize=10, fontweight="bold", y=1.0)
    ax.set_xlabel("delivered lag, ms", fontsize=8)
    ax.tick_params(labelsize=8)
    ax.set_ylim(0, 1.02)
    ax.grid(color="#eeeeee")
    _threshold_lines(ax.axvline)
    ax.set_xscale("log")
    ax.set_xlim(_lag_range(samples))
    if not samples:
        ax.text(0.5, 0.7, "no samples", transform=ax.transAxes, ha="center", color="#666")
        return
    values = sorted(_floor(s.lag_ms) for s in samples)
    ax.step(values, [(i + 1) / len(values) for i in range(len(values))], where="post", color=_FRAME, lw=1.5)
    lags = [s.lag_ms for s in samples]
    # under the axis: inside, any corner may hold the curve
    ax.set_xlabel(f"delivered lag, ms\nn={len(lags)}  p50={percentile(lags, 50):.0f}  p95={percentile(lags, 95):.0f}"
                  f"  max={max(lags):.0f}", fontsize=8)


def _threshold_lines(line: Any) -> None:
    """The runbook's classes: normal below 100 ms, warning to 500 ms, critical above."""
    line(NORMAL_MS, color=_CLASS_COLOUR["warning"], ls="--", lw=1, label=f"{NORMAL_MS:.0f} ms: warning")
    line(WARNING_MS, color=_CLASS_COLOUR["critical"], ls="--", lw=1, label=f"{WARNING_MS:.0f} ms: critical")


def _lag_range(samples: list[LagSample]) -> tuple[float, float]:
    """Always shows both runbook lines, and every sample (a log axis: decades around them)."""
    low = min((_floor(s.lag_ms) for s in samples), default=10.0)
    high = max((s.lag_ms for s in samples), default=WARNING_MS)
    return 10 ** math.floor(math.log10(min(low, 10.0))), 10 ** math.ceil(math.log10(max(high, WARNING_MS * 1.5)))


def _short(label: str, width: int = 24) -> str:
    return label if len(label) <= width else label[:width - 1] + "…"


def _floor(lag_ms: float) -> float:
    """A log axis cannot show 0 or a negative lag (clock offset noise): those sit at 0.1 ms."""
    return max(lag_ms, 0.1)


def _points(records: Sequence[Record], kind: type[Frame] | type[Heartbeat], lane: dict[str, int],
            t0: float) -> tuple[list[float], list[int]]:
    hits = [(r.wall - t0, lane[r.consumer]) for r in records if isinstance(r, kind) and r.consumer in lane]
    return [x for x, _ in hits], [y for _, y in hits]


def _times(r: Record) -> list[float]:
    if isinstance(r, FaultWindow):
        return [t for t in (r.start_wall, r.end_wall) if t]
    wall = getattr(r, "wall", None)
    return [wall] if wall else []


def _is_epoch(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and value > 1e9


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_snapshot(path: Path) -> Snapshot | None:
    data = _read_json(path)
    try:
        return Snapshot.from_dict(data) if data else None
    except (KeyError, TypeError):
        return None
