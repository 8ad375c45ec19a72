"""Percentiles and summaries of latency samples (pure)."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

__all__ = ["LatencySummary", "percentile", "summarize"]


def percentile(sorted_values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of already sorted values, interpolated linearly between ranks
    (numpy's default, "linear"); NaN for no values."""
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, got {q}")
    n = len(sorted_values)
    if n == 0:
        return math.nan
    rank = (n - 1) * q / 100
    lo = math.floor(rank)
    hi = min(lo + 1, n - 1)
    frac = rank - lo
    return sorted_values[lo] + (sorted_values[hi] - sorted_values[lo]) * frac


@dataclass(frozen=True)
class LatencySummary:
    """Milliseconds; NaN everywhere when there were no samples."""

    count: int
    p50: float
    p95: float
    p99: float
    max: float
    mean: float

    def to_dict(self) -> dict[str, float | int]:
        return {"count": self.count, "p50": self.p50, "p95": self.p95, "p99": self.p99, "max": self.max,
                "mean": self.mean}


def summarize(values_ms: Iterable[float]) -> LatencySummary:
    ordered = sorted(values_ms)
    if not ordered:
        return LatencySummary(0, math.nan, math.nan, math.nan, math.nan, math.nan)
    return LatencySummary(len(ordered), percentile(ordered, 50), percentile(ordered, 95),
                          percentile(ordered, 99), ordered[-1], math.fsum(ordered) / len(ordered))
