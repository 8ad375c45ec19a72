"""Summaries of latency samples (pure), with the project's one percentile rule (nearest rank,
`harness.checks.lag.percentile`): the bench's p95 is the lag check's and the runbook alert's."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass

from harness.checks.lag import percentile

__all__ = ["LatencySummary", "summarize"]


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
