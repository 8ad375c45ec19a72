"""The pure parts of `harness load`: fault specs, lag classes from raw values, phases, the verdict,
and the per-frame sequence judgement of the stream users."""

from __future__ import annotations

import pytest

from harness.errors import ConfigError
from harness.history import ConnClosed, ConnOpened, Frame, History
from harness.load.fault_specs import parse_fault_spec
from harness.load.frame_watch import delivery_problem, is_live
from harness.load.lag_classes import ClassCounts, count_classes, gate_allows, ms_bucket
from harness.load.phases import Phase, label_phases, phase_at
from harness.load.series import per_phase, per_second
from harness.load.verdict import lag_verdict, load_verdict


def test_a_toxic_spec_sets_its_first_attribute_and_its_window() -> None:
    [entry] = parse_fault_spec("pg_outbox:latency=300@20s-40s", 60)
    assert (entry.fault, entry.target, dict(entry.params), entry.start_s, entry.end_s) == \
        ("toxic", "pg_outbox", {"toxic": "latency", "latency": 300}, 20.0, 40.0)
    [upstream] = parse_fault_spec("sse:latency=5,jitter=2,stream=upstream@1s-2s", 10)
    assert dict(upstream.params) == {"toxic": "latency", "latency": 5, "jitter": 2, "stream": "upstream"}


def test_every_repeats_a_short_window_and_a_point_holds_to_the_end() -> None:
    resets = parse_fault_spec("sse:reset_peer@every10s", 35)
    assert [(e.start_s, e.end_s) for e in resets] == [(10.0, 11.0), (20.0, 21.0), (30.0, 31.0)]
    assert dict(resets[0].params) == {"toxic": "reset_peer"}
    [kill] = parse_fault_spec("kill:outbox-worker-0@30s", 60)
    assert (kill.fault, kill.target, kill.start_s, kill.end_s) == ("kill", "outbox-worker-0", 30.0, 60.0)
    assert [(e.start_s, e.end_s) for e in parse_fault_spec("cut:sse@every4s/2s", 10)] == [(4.0, 6.0), (8.0, 10.0)]


@pytest.mark.parametrize("spec", ["sse:latency=300", "sse:nope@1s", "x:latency@1s", "sse:latency=a@1s",
                                  "sse:latency@5s-2s", "sse:latency@1s-90s", "sse:latency@every1s/2s",
                                  "kill:api-0,bad@1s", "sse:latency@soon"])
def test_a_bad_spec_is_a_config_error_quoting_it(spec: str) -> None:
    with pytest.raises(ConfigError, match="^--fault"):
        parse_fault_spec(spec, 60)


def test_classes_are_counted_from_raw_values_at_the_boundaries() -> None:
    # Locust would count 99.6 as 100 (warning) and 505 as 500 (warning)
    assert count_classes([99.6, 100.0, 500.0, 500.4, 505.0]) == ClassCounts(normal=1, warning=2, critical=2)
    assert ms_bucket(99.6) == 99 and ms_bucket(505.0) == 505


def test_a_percentiles_class_follows_from_the_counts_by_nearest_rank() -> None:
    counts = ClassCounts(normal=95, warning=4, critical=1)
    assert counts.percentile_class(95) == "normal"  # the 95th smallest of 100 is still normal
    assert counts.percentile_class(99) == "warning"
    assert counts.percentile_class(100) == "critical"
    assert ClassCounts(normal=94, warning=6).percentile_class(95) == "warning"
    assert ClassCounts().percentile_class(95) is None
    assert gate_allows("warning", "warning") and not gate_allows("normal", "warning")
    assert not gate_allows("warning", "critical") and not gate_allows("normal", None)


def test_phases_label_baseline_fault_and_recovery() -> None:
    phases = label_phases([(20, 40), (35, 45), (50, 52)], 60)
    assert phases == [Phase("baseline", 0, 20), Phase("fault", 20, 45), Phase("recovery", 45, 50),
                      Phase("fault", 50, 52), Phase("recovery", 52, 60)]
    assert [phase_at(t, phases) for t in (0, 19.9, 20, 47, 51, 59, 70)] == \
        ["baseline", "baseline", "fault", "recovery", "fault", "recovery", "recovery"]
    assert label_phases([], 30) == [Phase("baseline", 0, 30)]
    assert label_phases([(0, 30)], 30) == [Phase("fault", 0, 30)]


def test_the_verdict_pass_fail_inconclusive() -> None:
    good, slow = ClassCounts(normal=1000), ClassCounts(normal=900, critical=100)
    assert lag_verdict(good, "normal", False, 100).exit_code == 0
    assert lag_verdict(slow, "normal", False, 100).exit_code == 1
    assert lag_verdict(ClassCounts(normal=940, warning=60), "warning", False, 100).exit_code == 0
    assert lag_verdict(slow, "normal", True, 100).verdict == "inconclusive"  # the generator's own lag?
    assert lag_verdict(ClassCounts(normal=10), "normal", False, 100).verdict == "inconclusive"
    passed = lag_verdict(good, "normal", False, 100)
    assert load_verdict(passed, True).exit_code == 0
    assert load_verdict(passed, False).exit_code == 1
    assert load_verdict(lag_verdict(good, "normal", True, 100), False).exit_code == 1  # a broken invariant stands
    assert load_verdict(passed, "unknown").exit_code == 2


def test_each_frame_must_follow_the_cursor() -> None:
    assert delivery_problem("r", 3, 4) is None
    assert "twice" in (delivery_problem("r", 4, 4) or "")
    assert "out of order" in (delivery_problem("r", 4, 2) or "")
    assert "gap: seq 7 after seq 4" in (delivery_problem("r", 4, 7) or "")
    assert "without a seq" in (delivery_problem("r", 4, None) or "")
    assert is_live(10.0, 9.5) and not is_live(9.0, 9.5) and not is_live(None, 9.5)


def test_series_and_phase_tables_from_recorded_frames() -> None:
    t0 = 1000.0
    h = History()
    h.append(ConnOpened("c#0", "c", "r", 0, None, 200, t0 + 0.1, 0.0))
    h.append(Frame("c#0", "c", "r", 1, "RunStep", t0 - 5.0, t0 + 0.2, 0.0))  # older than its connection: catch-up
    h.append(Frame("c#0", "c", "r", 2, "RunStep", t0 + 0.5, t0 + 0.51, 0.0))  # 10 ms, baseline
    h.append(ConnClosed("c#0", "c", "r", "error", t0 + 2.5, 0.0, 2))
    h.append(ConnOpened("c#1", "c", "r", 0, "2", 200, t0 + 2.6, 0.0))  # a reconnect with Last-Event-ID
    h.append(Frame("c#1", "c", "r", 3, "RunStep", t0 + 2.7, t0 + 3.3, 0.0))  # 600 ms, in the fault
    phases = label_phases([(2.0, 4.0)], 5.0)
    rows = {row["phase"]: row for row in per_phase(h, t0, phases)}
    assert (rows["baseline"]["live_frames"], rows["baseline"]["catch_up_frames"]) == (1, 1)
    assert rows["baseline"]["p99_class"] == "normal" and rows["baseline"]["p50"] == pytest.approx(10.0, abs=0.1)
    assert (rows["fault"]["p99_class"], rows["fault"]["reconnects"]) == ("critical", 1)
    assert rows["recovery"]["live_frames"] == 0 and rows["recovery"]["p95_class"] is None
    seconds = per_second(h, None, t0, 5.0)
    assert [s["delivered"] for s in seconds] == [2, 0, 0, 1, 0, 0]
    assert [s["open_streams"] for s in seconds] == [1, 1, 0, 1, 1, 0]  # one still open when the load ended at 5 s
    assert seconds[3]["p99"] == pytest.approx(600.0, abs=0.1) and seconds[2]["reconnects"] == 1
