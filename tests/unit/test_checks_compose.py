from __future__ import annotations

from _histories import delivery_history, snapshot
from harness.checks import CHECKERS, DEFAULT_OPTIONS, Result, check_all, compose, failed, merge_valid, passed, unknown


def _const(result: Result):  # type: ignore[no-untyped-def]
    return lambda history, snap, opts: result


def _boom(history, snap, opts):  # type: ignore[no-untyped-def]
    raise ZeroDivisionError("bug in a checker")


def test_merge_ranks_false_over_unknown_over_true() -> None:
    assert merge_valid([True, "unknown", False]) is False
    assert merge_valid([True, "unknown"]) == "unknown"
    assert merge_valid([True, True]) is True


def test_compose_keeps_each_result_and_the_worst_verdict() -> None:
    check = compose({"a": _const(passed(x=1)), "b": _const(unknown("why")), "c": _const(failed(seq=3))})
    res = check([], None, DEFAULT_OPTIONS)
    assert res.valid is False
    assert res.evidence["a"] == {"valid": True, "x": 1}
    assert res.evidence["c"] == {"valid": False, "seq": 3}


def test_a_raising_checker_becomes_unknown_not_pass() -> None:
    res = compose({"ok": _const(passed()), "broken": _boom})([], None, DEFAULT_OPTIONS)
    assert res.valid == "unknown"
    assert "ZeroDivisionError" in res.evidence["broken"]["error"]


def test_check_all_on_a_correct_history() -> None:
    assert list(CHECKERS) == ["exactly_once", "ordering", "time_travel", "terminal", "gapless",
                              "outbox_converged", "no_append_after_terminal", "lag", "heartbeat",
                              "no_duplicate_delivery", "steps_once", "content", "metrics_agree", "run_state",
                              "delivered_lag"]
    res = check_all(delivery_history(5, [2], probe=True), snapshot(5), DEFAULT_OPTIONS)
    verdicts = {name: r["valid"] for name, r in res.evidence.items()}
    # no append after the terminal, no lag samples (no row ts), no idle stream, no scripted steps and no metric
    # lines in this history: not decidable
    for name in ("no_append_after_terminal", "lag", "heartbeat", "steps_once", "metrics_agree", "delivered_lag"):
        assert verdicts.pop(name) == "unknown", name
    assert all(v is True for v in verdicts.values()), verdicts
    assert res.valid == "unknown"
