"""Calibrations: the figures a scenario's timing and sizes mean something against, derived in one place.

A `limit_data` meant to cut frames in half needs the frames' size on the wire; a latency meant to put
publish lag in the warning class needs how much lag a millisecond of latency adds on this machine; a
client timeout meant to fall between heartbeats needs the heartbeat interval. Tuned by hand, such
figures hold on the machine they were tuned on. Here each is derived, with why: from the stack's
configured `Intervals` (pure functions), or from a figure measured on the running stack before the
tests that need it (the `measure_*` coroutines, once per module in a module-scoped fixture, the scope of
the anyio backend that runs them; through a `Scenario` of their own, never the judged one)."""
from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from harness.checks.lag import NORMAL_MS, WARNING_MS, lag_samples, percentile
from harness.nemesis import Latency
from harness.stack import LocalStack
from harness.toolkit.scenario import Scenario

__all__ = ["CRITICAL_TARGET_MS", "LagResponse", "WARNING_TARGET_MS", "frame_ends", "head_within_s",
           "heartbeats_within", "heartbeat_phase_s", "latency_for_lag", "limit_inside_frame", "measure_frame_ends",
           "measure_lag_response", "measuring_scenario", "raw_response", "read_timeout_below", "read_timeout_above",
           "reconnects_watch_s"]


def measuring_scenario(stack: LocalStack, folder: Path) -> Scenario:
    """A scenario of its own on `stack`, healed first, for the `measure_*` coroutines: their runs and
    faults stay out of the histories the checkers judge."""
    stack.heal()
    return Scenario(folder, stack_source=lambda: stack)


# -- heartbeat phases, from the configured heartbeat interval --


def read_timeout_below(heartbeat_s: float) -> float:
    """A client read timeout that always expires before the next heartbeat: a third of the interval, so
    an idle stream is dropped before its first heartbeat (one interval after the head) with room for a
    heartbeat that comes early or a read that starts late."""
    return heartbeat_s / 3


def read_timeout_above(heartbeat_s: float) -> float:
    """A client read timeout that a heartbeating stream never reaches: three intervals, so one late
    heartbeat (the runbook's recommended timeout is likewise well above the interval) drops nothing."""
    return 3 * heartbeat_s


def reconnects_watch_s(reconnects: int, read_timeout_s: float, backoff_max_s: float) -> float:
    """How long to watch a client that drops after `read_timeout_s` of silence and waits at most
    `backoff_max_s` before reconnecting, so that it connects more than `reconnects` times: each
    connection lasts at most the sum; twice that many, since connecting costs time too on a loaded machine."""
    return 2 * (reconnects + 1) * (read_timeout_s + backoff_max_s)


def heartbeats_within(watch_s: float, heartbeat_s: float) -> int:
    """The fewest heartbeats one idle connection watched for `watch_s` gets: one per whole interval
    after the head, less the last one, which may fall just past the watch. A watch too short to
    count one is a mis-set scenario (`ValueError`), not a pass."""
    count = math.floor(watch_s / heartbeat_s) - 1
    if count < 1:
        raise ValueError(f"a {watch_s} s watch cannot count heartbeats {heartbeat_s} s apart")
    return count


def head_within_s(heartbeat_s: float) -> float:
    """How soon an idle stream's response head must reach the client. A proxy that buffers the response
    holds its head until the first body bytes, the first heartbeat, one interval after the request;
    half an interval tells the two apart with room for a slow start."""
    return heartbeat_s / 2


def heartbeat_phase_s(heartbeat_s: float) -> float:
    """How soon after a heartbeat a scenario must act for its step to count as right after it: a fifth
    of the interval, which leaves four fifths before the next heartbeat (and its database re-check)."""
    return heartbeat_s / 5


# -- frames on the wire, measured: what `limit_data` on the sse link counts --


def frame_ends(raw: bytes) -> list[int]:
    """Where each SSE frame (event, comment or `retry:`; each ends with a blank line) of a raw HTTP
    response ends, in bytes from the response's first byte, head and chunk framing included."""
    head = raw.find(b"\r\n\r\n")
    if head < 0:
        raise ValueError(f"not an HTTP response (no end of head): {raw[:80]!r}")
    ends: list[int] = []
    at = head + 4
    # Chunk framing is CRLF and an event's data is one JSON line: a LF LF is always a frame's end.
    while (end := raw.find(b"\n\n", at)) >= 0:
        ends.append(end + 2)
        at = end + 2
    return ends


async def raw_response(url: str, timeout_s: float = 10.0) -> bytes:
    """The bytes a stream request gets back as they cross a TCP proxy such as toxiproxy's `sse` link
    (the head, then the chunked body up to its last chunk), for a stream the server ends by itself."""
    parts = urlsplit(url)
    reader, writer = await asyncio.open_connection(parts.hostname, parts.port, limit=1 << 20)
    try:
        target = f"{parts.path}?{parts.query}" if parts.query else parts.path
        # Keep-alive like the consumers' client: the head then carries the same headers as theirs.
        writer.write(f"GET {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nAccept: text/event-stream\r\n"
                     f"Cache-Control: no-cache\r\n\r\n".encode())
        await writer.drain()
        return await asyncio.wait_for(reader.readuntil(b"\r\n0\r\n\r\n"), timeout_s)
    finally:
        writer.close()


async def measure_frame_ends(scenario: Scenario, payload_bytes: int, steps: int = 5,
                             timeout_s: float = 20.0) -> list[list[int]]:
    """`frame_ends` of two streams of an ended run whose steps carry `payload_bytes`, read through the
    stack's `sse` link: one from the start (RunStarted first, as a client's first connection) and one
    resumed after seq 1 (RunStep frames only, as every reconnect). `steps` gives both more frames than
    a cut after a few of them needs."""
    run_id = await scenario.start_run(steps=steps, interval_ms=0, payload_bytes=payload_bytes)
    await scenario.wait_for_outbox([run_id], timeout_s)
    url = scenario.consumer_config().stream_url(run_id)
    return [frame_ends(await raw_response(f"{url}?fromSeq={cursor}", timeout_s)) for cursor in (0, 1)]


def limit_inside_frame(layouts: Sequence[Sequence[int]], whole_frames: int) -> int:
    """A `limit_data` byte count that ends every connection mid-frame: past `whole_frames` whole frames
    and before the frame after next ends, in each of the `layouts` (`frame_ends` of the streams the
    connections carry), at the point farthest from any of their frame ends. A connection cut there
    always ends with part of a frame, never cleanly at a boundary, whichever layout it has."""
    if whole_frames < 1 or any(len(ends) < whole_frames + 2 for ends in layouts):
        raise ValueError(f"{whole_frames} whole frames, layouts of {[len(e) for e in layouts]} frames")
    low = max(ends[whole_frames - 1] for ends in layouts)
    high = min(ends[whole_frames + 1] for ends in layouts)
    boundaries = sorted({end for ends in layouts for end in ends})
    return max(range(low, high + 1), key=lambda cut: min(abs(cut - end) for end in boundaries))


# -- publish lag under latency on pg_outbox, measured --

# The median publish lag each phase of a lag scenario aims at. Under latency a publish may wait for the
# one in progress before its own, so p95 (what the class is taken from) runs up to twice the median:
# warning aims at the middle, on a log scale, of the medians whose p95 stays inside the class whether
# it waits or not (100 to 250 ms), and critical at twice the critical bound for the median alone.
WARNING_TARGET_MS = math.sqrt(NORMAL_MS * WARNING_MS / 2)
CRITICAL_TARGET_MS = 2 * WARNING_MS


@dataclass(frozen=True)
class LagResponse:
    """How median publish lag (publishedAt - ts) answers latency on the outbox's database link here;
    medians, so that one stall of a loaded machine does not skew the calibration."""

    base_ms: float  # with no fault
    per_latency_ms: float  # added per ms of latency


async def _publish_lag_p50(scenario: Scenario, script: Mapping[str, Any], runs: int, timeout_s: float) -> float:
    run_ids = [await scenario.start_run(**script) for _ in range(runs)]
    await scenario.wait_for_outbox(run_ids, timeout_s)
    return percentile([s.lag_ms for s in lag_samples(scenario.history, scenario.snapshot(run_ids), "publish")], 50)


async def measure_lag_response(scenario: Scenario, script: Mapping[str, Any], runs: int = 1,
                               probe_latency_ms: int = 40, timeout_s: float = 30.0) -> LagResponse:
    """Median publish lag of `runs` concurrent runs of `script` (the workload the latencies are meant
    for) on the idle stack, then under `probe_latency_ms` on `pg_outbox`. How many round trips a publish
    makes is the service's, what each costs besides the latency the machine's. Lag does not grow
    linearly (once a publish cycle nears the events' spacing, publishes wait for the one in progress),
    so the probe sits near the warning phase's latency, where the slope must be right; critical has
    room to spare."""
    base = await _publish_lag_p50(scenario, script, runs, timeout_s)
    with scenario.nemesis.toxic("pg_outbox", Latency(latency=probe_latency_ms)):
        probed = await _publish_lag_p50(scenario, script, runs, timeout_s)
    if probed <= base:
        raise ValueError(f"{probe_latency_ms} ms on pg_outbox added no publish lag: {base} -> {probed} ms")
    return LagResponse(base_ms=base, per_latency_ms=(probed - base) / probe_latency_ms)


def latency_for_lag(target_ms: float, response: LagResponse) -> int:
    """The latency (whole ms, at least 1) on `pg_outbox` that puts median publish lag near `target_ms`."""
    return max(1, math.ceil((target_ms - response.base_ms) / response.per_latency_ms))
