"""The load's labelled phases on its own clock (seconds from its start): `baseline` before the first
fault, `fault` while any fault is held (overlapping windows merged), `recovery` after a fault ends and
before the next one or the end of the load."""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["Phase", "label_phases", "phase_at"]


@dataclass(frozen=True)
class Phase:
    name: str  # baseline | fault | recovery
    start_s: float
    end_s: float


def label_phases(windows: Iterable[tuple[float, float]], duration_s: float) -> list[Phase]:
    """Phases covering [0, duration_s] without gaps; windows are clipped to the load."""
    merged: list[list[float]] = []
    for start, end in sorted((max(0.0, s), min(duration_s, e)) for s, e in windows):
        if end <= start:
            continue
        if merged and start <= merged[-1][1]:
            merged[-1][1] = max(merged[-1][1], end)
        else:
            merged.append([start, end])
    phases: list[Phase] = []
    at = 0.0
    for start, end in merged:
        if start > at:
            phases.append(Phase("recovery" if phases else "baseline", at, start))
        phases.append(Phase("fault", start, end))
        at = end
    if at < duration_s or not phases:
        phases.append(Phase("recovery" if phases else "baseline", at, duration_s))
    return phases


def phase_at(t: float, phases: Sequence[Phase]) -> str:
    """The phase of time `t`; before 0 is baseline, after the end the last phase goes on."""
    for phase in phases:
        if t < phase.end_s:
            return phase.name
    return phases[-1].name if phases else "baseline"
