"""The bench's pure parts: percentiles, chunked decoding, SSE frame timestamps."""

from __future__ import annotations

import math
from datetime import datetime, timezone

import pytest

from harness.bench.rawhttp import Dechunker, frame_ts_epoch, split_frames
from harness.bench.stats import percentile, summarize


def test_percentile_interpolates_between_ranks_like_numpy_linear() -> None:
    values = [1.0, 2.0, 3.0, 4.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 4.0
    assert percentile(values, 50) == pytest.approx(2.5)
    assert percentile(values, 95) == pytest.approx(3.85)
    assert percentile([7.0], 99) == 7.0


def test_percentile_of_nothing_is_nan_and_bounds_are_checked() -> None:
    assert math.isnan(percentile([], 50))
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summarize_sorts_and_reports_max_and_mean() -> None:
    s = summarize([5.0, 1.0, 3.0, 2.0, 4.0])
    assert (s.count, s.p50, s.max, s.mean) == (5, 3.0, 5.0, 3.0)
    assert s.p99 == pytest.approx(4.96)
    empty = summarize([])
    assert empty.count == 0 and math.isnan(empty.p95)


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
