"""Invariants 8 (lag classes) and 9 (heartbeat silence)."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given, strategies as st

from _histories import WALL0, Builder
from harness.checks import CheckOptions, heartbeat, lag
from harness.checks.lag import classify_lag, increasing_trend, lag_class, percentile
from harness.model import EventRow, RunSnapshot, Snapshot
from harness.history import FaultWindow


@pytest.mark.parametrize(("ms", "cls"), [(0, "normal"), (99.9, "normal"), (100, "warning"), (500, "warning"),
                                         (500.1, "critical")])
def test_lag_class_thresholds(ms: float, cls: str) -> None:
    assert lag_class(ms) == cls


def test_classify_lag_summary() -> None:
    s = classify_lag([10.0] * 18 + [200.0, 900.0])
    assert (s.count, s.p50, s.p95, s.p99, s.max) == (20, 10.0, 200.0, 900.0, 900.0)
    assert s.cls == "warning" and not s.increasing
    assert classify_lag([10.0] * 18 + [200.0, 900.0], basis="p50").cls == "normal"


def test_increasing_trend_is_critical_even_below_500() -> None:
    rising = [20.0 + 20 * i for i in range(12)]  # 20 .. 240 ms
    s = classify_lag(rising, basis="p50")
    assert s.increasing and s.cls == "critical"
    assert not increasing_trend([50.0, 400.0] * 6)  # noisy, not rising
    assert not increasing_trend([1.0, 2.0, 3.0, 4.0, 5.0, 6.0])  # rising, but by microscopic amounts


@given(st.lists(st.floats(0, 10_000, allow_nan=False), min_size=1, max_size=50))
def test_percentiles_are_observed_values_in_order(values: list[float]) -> None:
    s = classify_lag(values)
    assert s.p50 in values and s.p95 in values and s.p50 <= s.p95 <= s.p99 <= s.max
    assert percentile(values, 100) == max(values)


def _snap_with_lags(lags: list[float]) -> Snapshot:
    """Event i published at WALL0 + i, lags[i] ms after its ts."""
    rows = tuple(EventRow(i + 1, "RunStep", WALL0 + i - ms / 1000, WALL0 + i) for i, ms in enumerate(lags))
    return Snapshot({"r1": RunSnapshot("r1", "started", len(lags), len(lags) + 1, rows)})


def test_lag_check_bound_and_fault_exclusion() -> None:
    ok = [20.0] * 10
    assert lag.check([], _snap_with_lags(ok)).valid is True
    spiky = ok[:5] + [2000.0] * 3 + ok[5:]  # the spike sits at wall WALL0+5..7
    res = lag.check([], _snap_with_lags(spiky))
    assert res.valid is False and res.evidence["counterexample"]["lag_ms"] == 2000.0
    on_publish = [FaultWindow("toxic:latency", "pg_outbox", 4.5, 7.2, WALL0 + 4.5, WALL0 + 7.2)]
    assert lag.check(on_publish, _snap_with_lags(spiky), CheckOptions(lag_settle_s=0.5)).valid is True


def test_lag_check_unknown_with_few_samples_and_fails_on_trend() -> None:
    assert lag.check([], _snap_with_lags([10.0, 10.0])).valid == "unknown"
    rising = [20.0 + 20 * i for i in range(12)]
    res = lag.check([], _snap_with_lags(rising))
    assert res.valid is False and res.evidence["problem"] == "lag is increasing"
    assert lag.check([], _snap_with_lags(rising), CheckOptions(lag_fail_on_trend=False)).valid is True


def test_delivery_lag_skips_backfill() -> None:
    b = Builder(t=10.0)
    b.open("a")  # opened at WALL0 + 10
    b.frame("a", 1, ts=WALL0 + 1.0)  # an old event: backfill, not lag
    for seq in range(2, 8):
        b.frame("a", seq, ts=b.wall - 0.02)  # live, 20 ms behind
    res = lag.check(b.records, None, CheckOptions(lag_source="delivery"))
    assert res.valid is True and res.evidence["summary"]["count"] == 6


def _idle_connection(gaps: list[float], heartbeats: bool = True) -> Builder:
    b = Builder()
    b.open("a").frame("a", 1)
    for gap in gaps:
        b.tick(gap)
        b.heartbeat("a") if heartbeats else b.frame("a", 2)
    return b


def test_heartbeat_passes_and_fails() -> None:
    opts = CheckOptions(heartbeat_interval_s=1.0, heartbeat_tolerance_s=0.2)
    assert heartbeat.check(_idle_connection([1.0, 1.0, 1.0]).records, None, opts).valid is True
    b = _idle_connection([1.0, 3.0, 1.0])
    ce = heartbeat.check(b.records, None, opts).evidence["counterexample"]
    assert ce["conn"] == "a" and ce["silence_s"] == pytest.approx(3.01)


def test_heartbeat_silence_until_client_timeout_fails() -> None:
    b = _idle_connection([])
    b.tick(60.0).close("a", "timeout")
    ce = heartbeat.check(b.records, None).evidence["counterexample"]
    assert ce["silence_s"] > 59 and ce["closed"] == "timeout"


def test_heartbeat_silence_inside_a_fault_is_excused() -> None:
    b = _idle_connection([1.0, 3.0, 1.0])
    b.fault("partition", 1.0, 4.5)
    opts = CheckOptions(heartbeat_interval_s=1.0, heartbeat_tolerance_s=0.2)
    assert heartbeat.check(b.records, None, opts).valid is True
    assert heartbeat.check(b.records, None, replace(opts, heartbeat_exclude_faults=False)).valid is False


def test_heartbeat_unknown_when_no_stream_was_idle_long_enough() -> None:
    b = _idle_connection([0.1])
    b.close("a", "terminal")
    assert heartbeat.check(b.records, None).valid == "unknown"
