"""Each nemesis fault against the real stack has an observable effect, and schedules keep their clock.

Shared session stack, clean database per test; generous bounds (a toxic's effect is measured as a
lower bound, its absence as a loose upper bound).
"""
from __future__ import annotations

import asyncio
import socket
import time
from typing import Any

import httpx
import psycopg
import pytest

from harness.history import FaultWindow, History, Op, of_kind
from harness.nemesis import (
    Bandwidth,
    Latency,
    LimitData,
    ResetPeer,
    Slicer,
    SlowClose,
    Timeout,
    down,
    killed,
    link_toxic,
    locked_outbox,
    paused,
    run_schedule,
    terminated_backends,
)
from harness.stack import LocalStack, wait_until

pytestmark = pytest.mark.stack


def _run(stack: LocalStack, job: bool = True, **script: int) -> str:
    resp = httpx.post(f"{stack.info.api_direct_url}/api/agents/runs", json={"script": script, "job": job}, timeout=10)
    assert resp.status_code == 201, resp.text
    return str(resp.json()["runId"])


def _finished_run(stack: LocalStack, steps: int = 10, payload_bytes: int = 200) -> str:
    run_id = _run(stack, steps=steps, interval_ms=0, payload_bytes=payload_bytes)
    wait_until(lambda: _published(stack, run_id) == steps + 2, timeout=15, what=f"run {run_id} published")
    return run_id


def _published(stack: LocalStack, run_id: str) -> int:
    with psycopg.connect(stack.info.dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM run_events WHERE runId = %s AND publishedAt IS NOT NULL",
                           (run_id,)).fetchone()
    return int(row[0]) if row else 0


def _stream(stack: LocalStack, run_id: str, timeout: float = 5.0) -> tuple[bytes, float, Exception | None]:
    """The raw body of a stream from the start (a finished run: backfill, then the server closes)."""
    t0, body, error = time.monotonic(), b"", None
    try:
        with httpx.stream("GET", f"{stack.info.api_url}/api/agents/runs/{run_id}/stream?fromSeq=0",
                          timeout=timeout) as resp:
            for chunk in resp.iter_raw():
                body += chunk
    except httpx.HTTPError as exc:
        error = exc
    return body, time.monotonic() - t0, error


def _until_eof(stack: LocalStack, run_id: str) -> float:
    """Seconds until the server's close reaches us (raw socket: httpx stops at the last chunk)."""
    host, port = stack.info.proxy_listen["sse"].rsplit(":", 1)
    t0 = time.monotonic()
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(f"GET /api/agents/runs/{run_id}/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        while sock.recv(65536):
            pass
    return time.monotonic() - t0


def _get(stack: LocalStack, run_id: str) -> float:
    t0 = time.monotonic()
    resp = httpx.get(f"{stack.info.api_direct_url}/api/agents/runs/{run_id}", timeout=10)
    assert resp.status_code == 200, resp.text
    return time.monotonic() - t0


def _healed(stack: LocalStack) -> bool:
    assert stack.api is not None
    proxies = stack.api.list_proxies()
    return all(p.enabled and not p.toxics for p in proxies.values())


@pytest.mark.parametrize("stream", ["downstream", "upstream"])
def test_latency_on_pg_api_slows_a_get(stack: LocalStack, clean_db: str, stream: Any) -> None:
    run_id = _run(stack, job=False)
    history = History()
    with link_toxic(stack, history, "pg_api", Latency(latency=300, jitter=0), stream):
        slow = _get(stack, run_id)
    assert slow >= 0.3
    assert _get(stack, run_id) < 0.3
    [window] = of_kind(history, FaultWindow)
    assert (window.name, window.target, window.params["stream"]) == ("toxic:latency", "pg_api", stream)


def test_limit_data_cuts_an_sse_stream(stack: LocalStack, clean_db: str) -> None:
    run_id = _finished_run(stack)
    full, _, _ = _stream(stack, run_id)
    assert b"RunFinished" in full
    with link_toxic(stack, History(), "sse", LimitData(bytes=600)):
        cut, _, _ = _stream(stack, run_id)
    assert len(cut) <= 600 and b"RunFinished" not in cut


@pytest.mark.parametrize(("spec", "stream", "effect"), [
    (Bandwidth(rate=2), "downstream", "slow"),  # ~4 KB at 2 KB/s
    (Slicer(average_size=100, size_variation=0, delay=20_000), "downstream", "slow"),  # ~40 slices x 20 ms
    (SlowClose(delay=1000), "downstream", "late_eof"),  # the server's close reaches us 1 s late
    (Timeout(timeout=0), "downstream", "error"),  # data dropped until our read timeout
    (ResetPeer(timeout=0), "upstream", "error"),  # RST on the new connection
])
def test_each_toxic_on_the_sse_link_is_observable(stack: LocalStack, clean_db: str, spec: Any, stream: Any,
                                                   effect: str) -> None:
    run_id = _finished_run(stack)
    body, fast, error = _stream(stack, run_id)
    assert error is None and b"RunFinished" in body and fast < 0.8
    if effect == "late_eof":
        assert _until_eof(stack, run_id) < 0.8
        with link_toxic(stack, History(), "sse", spec, stream):
            assert _until_eof(stack, run_id) >= 0.9
        return
    with link_toxic(stack, History(), "sse", spec, stream):
        body, elapsed, error = _stream(stack, run_id, timeout=2.0)
    if effect == "slow":
        assert error is None and b"RunFinished" in body and elapsed >= 0.8, (elapsed, error)
    else:
        assert error is not None and b"RunFinished" not in body, (elapsed, error)


def test_down_refuses_connections_until_the_block_exits(stack: LocalStack, clean_db: str) -> None:
    url = f"{stack.info.api_url}/healthz"
    history = History()
    with down(stack, history, "sse"):
        with pytest.raises(httpx.TransportError):
            httpx.get(url, timeout=2)
    assert httpx.get(url, timeout=5).status_code == 200
    assert [w.name for w in of_kind(history, FaultWindow)] == ["down"]


def test_ending_a_kill_leaves_a_nested_toxic_and_pause_in_force(stack: LocalStack, clean_db: str) -> None:
    history = History()
    with paused(stack, history, "queue-worker-0"):
        with link_toxic(stack, history, "sse", Latency(latency=400)):
            with killed(stack, history, "outbox-worker-0"):
                assert not stack.process("outbox-worker-0").running
            assert stack.process("outbox-worker-0").running, "the killed process was not restarted"
            assert stack.process("queue-worker-0").paused, "ending the kill resumed a paused process"
            t0 = time.monotonic()
            httpx.get(f"{stack.info.api_url}/healthz", timeout=10)
            assert time.monotonic() - t0 >= 0.35, "ending the kill removed the toxic on the sse link"
    windows = {w.name: w for w in of_kind(history, FaultWindow)}
    assert windows["kill"].end <= windows["toxic:latency"].end <= windows["pause"].end  # type: ignore[operator]


def test_terminated_backends_make_the_service_reconnect(stack: LocalStack, clean_db: str) -> None:
    run_id = _run(stack, job=False)
    _get(stack, run_id)  # the pool has sessions to terminate
    with terminated_backends(stack, History(), "api") as pids:
        assert pids
        wait_until(lambda: httpx.get(f"{stack.info.api_direct_url}/api/agents/runs/{run_id}", timeout=5)
                   .status_code == 200, timeout=10, what="the API answering after its sessions were terminated")
    with psycopg.connect(stack.info.dsn, autocommit=True) as conn:
        now = {r[0] for r in conn.execute("SELECT pid FROM pg_stat_activity WHERE application_name LIKE 'api-%'")}
    assert now and not now & set(pids)


def test_locked_outbox_holds_publishing_until_released(stack: LocalStack, clean_db: str) -> None:
    run_id = _run(stack, job=False)
    events = f"{stack.info.api_direct_url}/api/agents/runs/{run_id}/events"
    with locked_outbox(stack, History(), run_id) as locked:
        assert locked == [run_id]
        assert httpx.post(events, json={"type": "RunStarted"}, timeout=5).status_code == 201
        time.sleep(1.0)  # several outbox polls (fast intervals) that must skip the locked row
        assert _published(stack, run_id) == 0
    wait_until(lambda: _published(stack, run_id) == 1, timeout=10, what="publishing after the lock is released")


def test_run_schedule_enters_and_exits_on_its_clock_and_heals(stack: LocalStack, clean_db: str) -> None:
    run_id = _run(stack, job=False)
    history = History()
    entries = [
        {"fault": "toxic", "target": "pg_api", "params": {"toxic": "latency", "latency": 200}, "start_s": 0.2,
         "end_s": 1.2},
        {"fault": "cut", "target": "sse", "start_s": 0.5, "end_s": 1.0},
        {"fault": "pause", "target": "outbox-worker-0", "start_s": 0.6, "end_s": 0.9},
    ]

    async def scenario() -> tuple[list[dict[str, Any]], float]:
        task = asyncio.create_task(run_schedule(stack, history, entries))
        await asyncio.sleep(0.7)
        during = await asyncio.to_thread(_get, stack, run_id)
        return await task, during

    timing, during = asyncio.run(scenario())
    assert during >= 0.2
    for entry, got in zip(entries, timing):
        assert entry["start_s"] <= got["entered_s"] < entry["start_s"] + 0.4, got  # type: ignore[operator]
        assert entry["end_s"] <= got["exited_s"] < entry["end_s"] + 0.4, got  # type: ignore[operator]
    assert sorted(w.name for w in of_kind(history, FaultWindow)) == ["down", "pause", "toxic:latency"]
    [op] = [o for o in of_kind(history, Op) if o.f == "schedule"]
    assert len(op.value["entries"]) == 3
    assert _healed(stack) and not stack.process("outbox-worker-0").paused


def test_a_cancelled_schedule_still_heals(stack: LocalStack, clean_db: str) -> None:
    entries = [{"fault": "cut", "target": "sse", "start_s": 0, "end_s": 30},
               {"fault": "toxic", "target": "pg_outbox", "params": {"toxic": "slicer", "average_size": 1, "delay": 10},
                "start_s": 0, "end_s": 30},
               {"fault": "lock_outbox", "target": "*", "start_s": 0.1, "end_s": 30}]

    async def scenario() -> None:
        task = asyncio.create_task(run_schedule(stack, History(), entries))
        await asyncio.sleep(0.6)
        assert stack.api is not None and not stack.api.get_proxy(stack.proxy_name("sse")).enabled
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    t0 = time.monotonic()
    asyncio.run(scenario())
    assert time.monotonic() - t0 < 10
    assert _healed(stack)
    assert httpx.get(f"{stack.info.api_url}/healthz", timeout=5).status_code == 200
