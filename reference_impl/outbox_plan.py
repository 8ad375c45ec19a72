"""Pure planning of one outbox cycle: which events of each claimed run can be published now.

A run's events are published strictly from its nextSeq upward; the first missing seq stops that
run's batch (a gap is never skipped: the runbook treats it as an append bug to alert on).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .events import Event

__all__ = ["Batch", "Claim", "Gap", "Plan", "plan_cycle"]


@dataclass(frozen=True)
class Claim:
    run_id: str
    next_seq: int
    last_seq: int


@dataclass(frozen=True)
class Gap:
    run_id: str
    expected_seq: int
    last_seq: int


@dataclass
class Batch:
    run_id: str
    events: list[Event] = field(default_factory=list)

    @property
    def first_seq(self) -> int:
        return self.events[0].seq

    @property
    def next_seq(self) -> int:
        return self.events[-1].seq + 1


@dataclass
class Plan:
    batches: list[Batch]
    gaps: list[Gap]

    @property
    def events(self) -> list[Event]:
        return [event for batch in self.batches for event in batch.events]


def plan_cycle(claims: Sequence[Claim], events: Iterable[Event], limit: int) -> Plan:
    """`events`: up to `limit` rows per run read from its nextSeq upward, in seq order per run."""
    by_run: dict[str, list[Event]] = {}
    for event in events:
        by_run.setdefault(event.run_id, []).append(event)
    plan = Plan([], [])
    for claim in claims:
        batch, gap = _contiguous(claim, by_run.get(claim.run_id, []), limit)
        if batch.events:
            plan.batches.append(batch)
        if gap is not None:
            plan.gaps.append(gap)
    return plan


def _contiguous(claim: Claim, events: list[Event], limit: int) -> tuple[Batch, Gap | None]:
    batch = Batch(claim.run_id)
    expected = claim.next_seq
    for event in events:
        if event.seq != expected:
            return batch, Gap(claim.run_id, expected, max(claim.last_seq, events[-1].seq))
        batch.events.append(event)
        expected += 1
    # Fewer rows than asked for while lastSeq says more exist: the row at `expected` is missing.
    if expected <= claim.last_seq and len(events) < limit:
        return batch, Gap(claim.run_id, expected, claim.last_seq)
    return batch, None
