"""The calibrations' pure parts: heartbeat phases from the interval, frame ends on the wire and the
limit_data cut they give, the latency a publish-lag target asks for; and the raw read they measure with."""
from __future__ import annotations

import asyncio

import pytest

from harness.checks.lag import lag_class
from harness.toolkit.calibration import (
    CRITICAL_TARGET_MS,
    WARNING_TARGET_MS,
    LagResponse,
    frame_ends,
    head_within_s,
    heartbeat_phase_s,
    heartbeats_within,
    latency_for_lag,
    limit_inside_frame,
    raw_response,
    read_timeout_above,
    read_timeout_below,
    reconnects_watch_s,
)
from reference_impl.sse_framing import HEARTBEAT, frame

HEAD = b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


def _response(*chunks: bytes) -> bytes:
    return HEAD + b"".join(_chunk(c) for c in chunks) + b"0\r\n\r\n"


@pytest.mark.parametrize("heartbeat_s", [0.5, 1.0, 15.0])
def test_heartbeat_phases_sit_where_their_scenarios_need_them(heartbeat_s: float) -> None:
    # A flapping client drops before the first heartbeat (one interval after the head), a patient one
    # outlasts a heartbeat late by a whole interval.
    assert read_timeout_below(heartbeat_s) < heartbeat_s / 2
    assert read_timeout_above(heartbeat_s) > 2 * heartbeat_s
    # A head held until the first heartbeat comes later than the bound; acting within the phase
    # leaves most of the interval before the next heartbeat.
    assert head_within_s(heartbeat_s) < heartbeat_s
    assert heartbeat_phase_s(heartbeat_s) <= heartbeat_s / 4


def test_the_reconnect_watch_fits_more_than_the_reconnects_asked_for() -> None:
    watch = reconnects_watch_s(10, read_timeout_s=1 / 3, backoff_max_s=0.1)
    assert watch / (1 / 3 + 0.1) > 11  # even with every wait at its longest
    assert watch == pytest.approx(9.53, abs=0.01)
    assert reconnects_watch_s(20, 1 / 3, 0.1) > watch


@pytest.mark.parametrize(("watch_s", "heartbeat_s", "least"), [(5.0, 1.0, 4), (5.0, 2.0, 1), (4.9, 1.0, 3)])
def test_heartbeats_within_a_watch_leave_out_the_last_one(watch_s: float, heartbeat_s: float, least: int) -> None:
    assert heartbeats_within(watch_s, heartbeat_s) == least


def test_a_watch_too_short_to_count_a_heartbeat_is_refused() -> None:
    with pytest.raises(ValueError, match="cannot count"):
        heartbeats_within(1.5, 1.0)


def test_frame_ends_count_head_and_chunk_framing() -> None:
    first, second = frame(1, "RunStarted", "{}"), frame(2, "RunStep", '{"a":1}')
    raw = _response(first + second, HEARTBEAT)  # a backfill coalesced into one chunk, then a heartbeat
    body = len(HEAD) + len(b"%x\r\n" % len(first + second))
    heartbeat_end = body + len(first + second) + 2 + len(b"%x\r\n" % len(HEARTBEAT)) + len(HEARTBEAT)
    assert frame_ends(raw) == [body + len(first), body + len(first) + len(second), heartbeat_end]
    assert raw[heartbeat_end - len(HEARTBEAT):heartbeat_end] == HEARTBEAT


def test_frame_ends_of_a_response_without_frames_and_of_no_response() -> None:
    assert frame_ends(_response()) == []
    with pytest.raises(ValueError, match="no end of head"):
        frame_ends(b"id: 1\nevent: X\ndata: {}\n\n")


def test_the_cut_lands_inside_a_frame_in_every_layout_as_far_as_it_can_from_their_ends() -> None:
    # A first connection (a short RunStarted, then 470-byte steps) and a resumed one (steps only).
    fresh = [370, 840, 1310, 1780, 2250]
    resumed = [670, 1140, 1610, 2080, 2550]
    cut = limit_inside_frame([fresh, resumed], whole_frames=2)
    assert cut == 1460  # midway between fresh's 1310 and resumed's 1610: 150 bytes from either
    for ends in (fresh, resumed):
        assert cut > ends[1] and cut not in ends  # past two whole frames, mid-frame
    assert limit_inside_frame([resumed], whole_frames=2) == (1140 + 1610) // 2


def test_the_cut_needs_frames_past_it_and_a_whole_frame_before_it() -> None:
    with pytest.raises(ValueError):
        limit_inside_frame([[100, 200, 300]], whole_frames=2)
    with pytest.raises(ValueError):
        limit_inside_frame([[100, 200, 300]], whole_frames=0)


def test_the_lag_targets_land_in_their_class_even_at_twice_the_median() -> None:
    assert lag_class(WARNING_TARGET_MS) == lag_class(2 * WARNING_TARGET_MS) == "warning"
    assert lag_class(CRITICAL_TARGET_MS / 2) == "warning" and lag_class(CRITICAL_TARGET_MS) == "critical"


def test_latency_for_a_lag_target() -> None:
    response = LagResponse(base_ms=3.0, per_latency_ms=5.0)
    assert latency_for_lag(158.0, response) == 31  # 155 / 5, rounded up
    assert latency_for_lag(1000.0, response) == 200
    assert latency_for_lag(2.0, response) == 1  # a target below the base still asks for some latency


def test_raw_response_returns_the_bytes_as_they_cross_the_wire() -> None:
    raw = _response(frame(1, "RunStarted", "{}"), frame(2, "RunFinished", '{"status":"succeeded"}'))
    requests: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        requests.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(raw)  # and the connection stays open, as a keep-alive server leaves it
        await writer.drain()
        await reader.read()  # until the client hangs up
        writer.close()

    async def main() -> bytes:
        server = await asyncio.start_server(serve, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        async with server:
            return await raw_response(f"http://127.0.0.1:{port}/api/agents/runs/r/stream?fromSeq=1", 5)

    assert asyncio.run(main()) == raw
    assert requests[0].startswith(b"GET /api/agents/runs/r/stream?fromSeq=1 HTTP/1.1\r\n")
