"""steps_once on hand-made event logs: a job run twice (a lease fence that let the older copy through)
repeats step indices; a resumed job that restarted from the beginning repeats RunStarted."""

from __future__ import annotations

from harness.checks import CHECKERS, Result, steps
from harness.model import EventRow, RunSnapshot, Snapshot


def _run(*events: tuple[str, int | None], run_id: str = "r1", state: str = "succeeded") -> RunSnapshot:
    rows = tuple(EventRow(seq, type_, step=step) for seq, (type_, step) in enumerate(events, start=1))
    return RunSnapshot(run_id, state, len(rows), len(rows) + 1, rows)


def _scripted(n: int, run_id: str = "r1") -> RunSnapshot:
    return _run(("RunStarted", None), *[("RunStep", i) for i in range(n)], ("RunFinished", None), run_id=run_id)


def _check(*runs: RunSnapshot) -> Result:
    return steps.check([], Snapshot(runs={r.run_id: r for r in runs}))


def test_each_step_once_in_order_passes_and_is_registered() -> None:
    result = _check(_scripted(30))
    assert result.valid is True
    assert CHECKERS[steps.NAME] is steps.check


def test_a_job_run_twice_names_each_repeated_step_with_its_seqs() -> None:
    # The measured defect: 30 steps, the first copy appended 0..9, the second copy restarted from step 2
    # while the first went on: steps 2..9 appended twice.
    first = [("RunStep", i) for i in range(10)]
    second = [("RunStep", i) for i in range(2, 30)]
    result = _check(_run(("RunStarted", None), *first, *second, ("RunFinished", None)))
    assert result.valid is False
    ce = result.evidence["counterexample"]
    assert ce["key"] == "r1" and ce["duplicate_count"] == 8
    assert ce["duplicated"][0] == {"step": 2, "seqs": [4, 12]}
    assert ce["problem"] == "steps appended more than once"


def test_restarting_from_the_beginning_repeats_run_started() -> None:
    head = [("RunStarted", None), *[("RunStep", i) for i in range(3)]]
    result = _check(_run(*head, *head, ("RunFinished", None)))
    ce = result.evidence["counterexample"]
    assert result.valid is False and ce["run_started_seqs"] == [1, 5]
    assert "RunStarted not appended exactly once" in ce["problem"]


def test_a_hole_a_late_run_started_and_a_reorder_each_fail() -> None:
    hole = _run(("RunStarted", None), ("RunStep", 0), ("RunStep", 2))
    late_start = _run(("RunStep", 0), ("RunStarted", None), ("RunStep", 1))
    reordered = _run(("RunStarted", None), ("RunStep", 1), ("RunStep", 0))
    assert _check(hole).evidence["counterexample"]["missing"] == [[1, 1]]
    assert _check(late_start).evidence["counterexample"]["problem"] == "RunStarted is not the first event"
    assert _check(reordered).evidence["counterexample"]["out_of_order"] == {"seq": 2, "step": 1, "expected_step": 0}


def test_a_run_not_finished_yet_passes_on_what_it_has() -> None:
    assert _check(_run(("RunStarted", None), ("RunStep", 0), ("RunStep", 1), state="started")).valid is True


def test_hand_appended_runs_are_not_judged_and_nothing_scripted_is_unknown() -> None:
    by_hand = _run(("RunStep", None), ("RunStep", None), run_id="h")
    appended = _run(("Appended", None), run_id="a")
    alone = _check(by_hand, appended)
    assert alone.valid == "unknown" and alone.evidence["unscripted"] == ["a", "h"]
    mixed = _check(by_hand, _scripted(3))
    assert mixed.valid is True and mixed.evidence["checked"] == 1


def test_a_scripted_run_whose_snapshot_lacks_step_indices_is_unknown_not_pass() -> None:
    result = _check(_run(("RunStarted", None), ("RunStep", None), ("RunFinished", None)))
    assert result.valid == "unknown"
    assert result.evidence["unknowns"][0]["seqs"] == [2]


def test_no_snapshot_is_unknown() -> None:
    assert steps.check([], None).valid == "unknown"
