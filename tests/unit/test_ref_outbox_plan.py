from __future__ import annotations

from datetime import datetime, timezone

from reference_impl.events import Event
from reference_impl.outbox_plan import Claim, Gap, Plan, plan_cycle

T = datetime(2025, 1, 1, tzinfo=timezone.utc)


def ev(run: str, seq: int) -> Event:
    return Event(run, seq, "RunStep", {}, T)


def seqs(plan: Plan, run: str) -> list[int]:
    return [e.seq for b in plan.batches if b.run_id == run for e in b.events]


def test_contiguous_events_are_published_in_order() -> None:
    plan = plan_cycle([Claim("a", 3, 5)], [ev("a", 3), ev("a", 4), ev("a", 5)], limit=100)
    assert seqs(plan, "a") == [3, 4, 5] and plan.gaps == []
    assert (plan.batches[0].first_seq, plan.batches[0].next_seq) == (3, 6)


def test_missing_first_seq_is_a_gap_and_nothing_is_published() -> None:
    plan = plan_cycle([Claim("a", 3, 5)], [ev("a", 4), ev("a", 5)], limit=100)
    assert plan.batches == [] and plan.gaps == [Gap("a", 3, 5)]


def test_gap_in_the_middle_stops_the_cursor_there() -> None:
    plan = plan_cycle([Claim("a", 1, 5)], [ev("a", 1), ev("a", 2), ev("a", 4), ev("a", 5)], limit=100)
    assert seqs(plan, "a") == [1, 2] and plan.gaps == [Gap("a", 3, 5)]


def test_missing_tail_below_last_seq_is_a_gap() -> None:
    plan = plan_cycle([Claim("a", 1, 5)], [ev("a", 1), ev("a", 2)], limit=100)
    assert seqs(plan, "a") == [1, 2] and plan.gaps == [Gap("a", 3, 5)]


def test_a_full_batch_is_not_a_gap() -> None:
    plan = plan_cycle([Claim("a", 1, 500)], [ev("a", 1), ev("a", 2)], limit=2)
    assert seqs(plan, "a") == [1, 2] and plan.gaps == []


def test_no_rows_at_all_is_a_gap() -> None:
    assert plan_cycle([Claim("a", 7, 7)], [], limit=10).gaps == [Gap("a", 7, 7)]


def test_runs_are_independent() -> None:
    plan = plan_cycle([Claim("a", 1, 2), Claim("b", 5, 6)], [ev("a", 1), ev("a", 2), ev("b", 6)], limit=10)
    assert seqs(plan, "a") == [1, 2] and seqs(plan, "b") == [] and plan.gaps == [Gap("b", 5, 6)]
