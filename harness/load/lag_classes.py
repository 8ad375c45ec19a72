"""The runbook's lag classes counted from raw lag values, and a percentile's class from those counts.

Locust rounds response times to about two significant digits (505 ms counts as 500, 99.6 as 100):
exactly at the class boundaries. So the gate never reads Locust's percentiles: each live frame's raw
lag is classified here (`harness.checks.lag.lag_class`: normal < 100 ms, warning 100-500, critical
> 500), and a percentile's class follows exactly from the counts (nearest rank, the project's rule).
`ms_bucket` is Locust's replacement bucketing: whole milliseconds, for its own tables and charts.
"""
from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from harness.checks.lag import lag_class

__all__ = ["CLASSES", "ClassCounts", "count_classes", "gate_allows", "ms_bucket"]

CLASSES = ("normal", "warning", "critical")


def ms_bucket(response_time: float) -> int:
    """1 ms buckets (floored), so a bucket never straddles 100 ms; Locust's own is ~2 significant digits."""
    return int(response_time)


@dataclass(frozen=True)
class ClassCounts:
    normal: int = 0
    warning: int = 0
    critical: int = 0

    @property
    def total(self) -> int:
        return self.normal + self.warning + self.critical

    def __add__(self, other: ClassCounts) -> ClassCounts:
        return ClassCounts(self.normal + other.normal, self.warning + other.warning, self.critical + other.critical)

    def percentile_class(self, q: float) -> str | None:
        """The class of the q-th percentile (0 < q <= 100) by nearest rank, None without samples: the
        ceil(q/100 x n)-th smallest value is normal when that many values are normal, and so on."""
        if self.total == 0:
            return None
        rank = max(1, math.ceil(q / 100 * self.total))
        if rank <= self.normal:
            return "normal"
        return "warning" if rank <= self.normal + self.warning else "critical"

    def to_dict(self) -> dict[str, int]:
        return {"normal": self.normal, "warning": self.warning, "critical": self.critical}

    @classmethod
    def from_dict(cls, data: Mapping[str, int]) -> ClassCounts:
        return cls(int(data.get("normal", 0)), int(data.get("warning", 0)), int(data.get("critical", 0)))


def count_classes(lags_ms: Iterable[float]) -> ClassCounts:
    counts = dict.fromkeys(CLASSES, 0)
    for lag in lags_ms:
        counts[lag_class(lag)] += 1
    return ClassCounts(**counts)


def gate_allows(gate: str, cls: str | None) -> bool:
    """Whether a percentile of class `cls` stays in the gated class (`normal`, or `warning`: not critical)."""
    return cls is not None and CLASSES.index(cls) <= CLASSES.index(gate)
