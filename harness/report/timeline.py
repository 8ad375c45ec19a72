"""A compact timeline of one scenario as inline SVG (no JS): fault windows as bars on top, then one lane
per consumer with its connections (thin lines, a red end when closed by an error or timeout) and its
frames (ticks, at most one per pixel). Times are the history's wall clock, relative to its first record.
Hovering an element shows its details (SVG `<title>`)."""
from __future__ import annotations

from collections.abc import Callable, Iterable
from html import escape
from pathlib import Path

from harness.history import ConnClosed, ConnOpened, FaultWindow, Frame, Record, load_jsonl

__all__ = ["render_timeline", "timeline_for_history_file"]

WIDTH, LANE, LEFT, TOP = 860, 16, 150, 18
_BAD_CLOSE = {"error", "timeout"}


def timeline_for_history_file(path: Path) -> str:
    """The SVG for a saved history, or "" when there is none (or nothing to draw)."""
    if not path.is_file():
        return ""
    try:
        return render_timeline(load_jsonl(path))
    except (OSError, ValueError, KeyError, TypeError):
        return ""


def render_timeline(records: Iterable[Record]) -> str:
    records = list(records)
    faults = [r for r in records if isinstance(r, FaultWindow)]
    consumers = sorted({r.consumer for r in records if isinstance(r, (ConnOpened, Frame, ConnClosed))})
    times = [t for r in records for t in _times(r)]
    if not times or not (faults or consumers):
        return ""
    t0, t1 = min(times), max(times)
    scale = (WIDTH - LEFT - 10) / max(t1 - t0, 1e-3)

    def x(t: float) -> float:
        return round(LEFT + (t - t0) * scale, 1)

    lanes = [_fault_lane(i, f, x, t1) for i, f in enumerate(faults)]
    lanes += [_consumer_lane(len(faults) + i, c, records, x, t1) for i, c in enumerate(consumers)]
    height = TOP + LANE * (len(faults) + len(consumers)) + 6
    axis = (f"<text x='{LEFT}' y='12'>0 s</text>"
            f"<text x='{WIDTH - 10}' y='12' text-anchor='end'>{t1 - t0:.2f} s</text>")
    return (f"<svg class='timeline' xmlns='http://www.w3.org/2000/svg' width='{WIDTH}' height='{height}' "
            f"font-size='11' font-family='sans-serif'>{axis}{''.join(lanes)}</svg>")


def _times(r: Record) -> list[float]:
    if isinstance(r, FaultWindow):
        return [t for t in (r.start_wall, r.end_wall) if t]
    wall = getattr(r, "wall", None)
    return [wall] if wall else []


def _label(i: int, text: str) -> str:
    y = TOP + LANE * i
    return f"<text x='4' y='{y + 11}'>{escape(text[:24])}<title>{escape(text)}</title></text>"


def _fault_lane(i: int, f: FaultWindow, x: Callable[[float], float], t1: float) -> str:
    y, end = TOP + LANE * i, f.end_wall or t1
    x0, x1 = x(f.start_wall), x(end)
    tip = f"{f.name} on {f.target} {f.params or ''} for {end - f.start_wall:.2f} s" + ("" if f.end_wall else " (never healed)")
    return (_label(i, f"{f.name} {f.target}") + f"<rect x='{x0}' y='{y + 2}' width='{max(x1 - x0, 2)}' height='{LANE - 4}' "
            f"fill='#e8a33d' opacity='.8'><title>{escape(tip)}</title></rect>")


def _consumer_lane(i: int, consumer: str, records: list[Record], x: Callable[[float], float], t1: float) -> str:
    y, mid = TOP + LANE * i, TOP + LANE * i + LANE // 2
    parts = [_label(i, consumer)]
    closes = {r.conn: r for r in records if isinstance(r, ConnClosed) and r.consumer == consumer}
    for r in records:
        if isinstance(r, ConnOpened) and r.consumer == consumer:
            close = closes.get(r.conn)
            end = close.wall if close else t1
            colour = "#b3261e" if close is not None and close.reason in _BAD_CLOSE else "#555"
            tip = f"{r.conn} status {r.status} cursor {r.cursor} -> {close.reason if close else 'open'}"
            parts.append(f"<line x1='{x(r.wall)}' x2='{x(end)}' y1='{mid}' y2='{mid}' stroke='#999'>"
                         f"<title>{escape(tip)}</title></line>"
                         f"<circle cx='{x(end)}' cy='{mid}' r='2.5' fill='{colour}'><title>{escape(tip)}</title></circle>")
    ticks = sorted({x(r.wall) for r in records if isinstance(r, Frame) and r.consumer == consumer})
    seqs = [r.seq for r in records if isinstance(r, Frame) and r.consumer == consumer]
    path = "".join(f"M{t} {y + 2}v{LANE - 4}" for t in ticks)
    if path:
        parts.append(f"<path d='{path}' stroke='#2a6fdb' stroke-width='1'>"
                     f"<title>{len(seqs)} frames, seq {min((s for s in seqs if s is not None), default='-')}"
                     f"..{max((s for s in seqs if s is not None), default='-')}</title></path>")
    return "".join(parts)
