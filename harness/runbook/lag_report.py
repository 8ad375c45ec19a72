"""The runbook's "Outbox Lag" metric: avg / p50 / p95 / p99 of `lag_ms` from `metric.events_published`
log lines, with the runbook's class. The statistics and the classes are `harness.checks.lag`'s
(`classify_lag`: normal < 100 ms, warning 100-500 ms, critical > 500 ms or an increasing trend).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from harness.checks.lag import classify_lag
from harness.model import PublishRecord
from harness.service_logs import RUNBOOK_LOGS, publishes_from_log_lines, read_log_lines
from harness.target.profile import LogSpec

__all__ = ["LagGroup", "LagReport", "lag_report", "summarise_publishes"]

NO_DATA = "no data"


@dataclass
class LagGroup:
    name: str  # "all", or the event type with --by type, or the runId with --by run
    count: int
    avg: float | None = None
    p50: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None
    cls: str = NO_DATA
    increasing: bool = False

    @property
    def label(self) -> str:
        return "critical (increasing trend)" if self.increasing else self.cls


@dataclass
class LagReport:
    window_s: float | None
    basis: str
    overall: LagGroup
    groups: list[LagGroup] = field(default_factory=list)
    by: str | None = None

    @property
    def healthy(self) -> bool:
        return self.overall.cls in ("normal", NO_DATA)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["overall"]["label"] = self.overall.label
        for group, data in zip(self.groups, out["groups"]):
            data["label"] = group.label
        return out


def _group(name: str, records: Sequence[PublishRecord], basis: str) -> LagGroup:
    values = [r.lag_ms for r in sorted(records, key=lambda r: r.time) if r.lag_ms is not None]
    if not values:
        return LagGroup(name, 0)
    s = classify_lag(values, basis)
    return LagGroup(name, s.count, round(s.avg, 3), s.p50, s.p95, s.p99, s.max, s.cls, s.increasing)


def summarise_publishes(records: Sequence[PublishRecord], *, basis: str = "p95", by: str | None = None,
                        window_s: float | None = None) -> LagReport:
    """Pure: the report over publish records (in any order; the trend reads them in time order)."""
    groups: dict[str, list[PublishRecord]] = defaultdict(list)
    if by is not None:
        for rec in records:
            key = rec.type if by == "type" else rec.run_id
            groups[str(key)].append(rec)
    return LagReport(window_s, basis, _group("all", records, basis),
                     [_group(k, v, basis) for k, v in sorted(groups.items())], by)


def lag_report(logs_dir: Path, *, since_s: float | None = 300.0, basis: str = "p95", by: str | None = None,
               run_id: str | None = None, spec: LogSpec = RUNBOOK_LOGS) -> LagReport:
    lines = read_log_lines(logs_dir, since_s=since_s, msg="metric.events_published", spec=spec)
    records = publishes_from_log_lines(lines)
    if run_id is not None:
        records = tuple(r for r in records if r.run_id == run_id)
    return summarise_publishes(records, basis=basis, by=by, window_s=since_s)
