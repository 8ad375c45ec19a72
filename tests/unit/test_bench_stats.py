"""The bench's pure parts: latency summaries (the lag check's percentile rule), chunked decoding, SSE
frame timestamps."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from _histories import WALL0
from harness.bench.rawhttp import Dechunker, frame_ts_epoch, split_frames
from harness.bench.stats import summarize
from harness.checks import CheckOptions, lag
from harness.checks.lag import percentile
from harness.model import EventRow, RunSnapshot, Snapshot


def test_percentile_is_the_nearest_rank_an_observed_value() -> None:
    values = [4.0, 1.0, 3.0, 2.0]  # any order
    assert [percentile(values, q) for q in (0, 25, 26, 50, 95, 100)] == [1.0, 1.0, 2.0, 2.0, 4.0, 4.0]
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_or_out_of_bounds_is_an_error() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_sorts_and_reports_max_and_mean() -> None:
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.count, s.p50, s.p95, s.p99, s.max, s.mean) == (5, 3.0, 5.0, 5.0, 5.0, 3.0)
    empty = summarize([])
    assert empty.count == 0 and math.isnan(empty.p95)


def test_the_bench_and_the_lag_check_report_the_same_p95() -> None:
    # 20 samples whose interpolated p95 (362.95) is no sample: nearest rank gives the 19th, 361
    lags = [float(((i * 7) % 20 + 1) ** 2) for i in range(20)]
    rows = tuple(EventRow(i + 1, "RunStep", WALL0 + i - ms / 1000, WALL0 + i) for i, ms in enumerate(lags))
    snap = Snapshot({"r1": RunSnapshot("r1", "started", len(lags), len(lags) + 1, rows)})
    samples = [s.lag_ms for s in lag.lag_samples([], snap, "publish")]  # the rows' times, in float seconds
    checked = lag.check([], snap, CheckOptions(lag_fail_on_trend=False)).evidence["summary"]["p95"]
    assert summarize(samples).p95 == checked == pytest.approx(361.0, abs=0.01)
    assert summarize(lags).p95 == 361.0


def test_dechunker_handles_chunks_split_anywhere() -> None:
    body = b"id: 1\ndata: {}\n\n" * 3
    wire = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:5], body[5:30], body[30:])) + b"0\r\n\r\n"
    dechunk, out = Dechunker(), bytearray()
    for i in range(len(wire)):  # one byte at a time: the worst split
        out += dechunk.feed(wire[i:i + 1])
    assert bytes(out) == body and dechunk.done


def test_split_frames_keeps_the_unfinished_block() -> None:
    buf = bytearray(b"id: 1\ndata: a\n\n: heartbeat\n\nid: 2\nda")
    assert split_frames(buf) == [b"id: 1\ndata: a", b": heartbeat"]
    assert buf == bytearray(b"id: 2\nda")


def test_frame_ts_epoch_reads_the_services_iso_ts() -> None:
    block = (b'id: 3\nevent: BenchTick\ndata: {"runId":"r","seq":3,"type":"BenchTick",'
             b'"ts":"2025-01-02T03:04:05.123456Z","payload":{}}')
    cache: dict[bytes, float] = {}
    expected = datetime(2025, 1, 2, 3, 4, 5, 123456, tzinfo=timezone.utc).timestamp()
    assert frame_ts_epoch(block, cache) == pytest.approx(expected)
    assert frame_ts_epoch(block, cache) == pytest.approx(expected)  # from the cache
    assert frame_ts_epoch(b": heartbeat", cache) is None
