"""The replay-only SSE server of the generator benchmark (tools/replay_server): built by the harness,
it serves a run's frames in order with the stream contract's shape, and leaves no process behind."""

from __future__ import annotations

import json
import os
from pathlib import Path

import httpx

from harness.bench.replay_server import ReplaySettings, replay_server, run_id
from harness.workload.sse_parser import SSEEvent, SSEParser


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return status.exists() and "zombie" not in status.read_text()


def test_serves_a_runs_frames_in_order_then_its_terminal_and_stops(tmp_path: Path) -> None:
    events = 25
    with replay_server(ReplaySettings(runs=2, rate=500.0, events=events), tmp_path) as server:
        run = run_id(2)
        parser, frames = SSEParser(), []
        with httpx.stream("GET", f"{server.url}/api/agents/runs/{run}/stream", timeout=10.0) as resp:
            assert resp.status_code == 200 and resp.headers["content-type"] == "text/event-stream"
            for line in resp.iter_lines():  # ends when the server closes the stream after the terminal
                frames += [item for item in parser.feed_line(line) if isinstance(item, SSEEvent)]
        data = [json.loads(frame.data) for frame in frames]
        assert [frame.id for frame in frames] == [str(seq) for seq in range(1, events + 2)]
        assert [d["seq"] for d in data] == list(range(1, events + 2))
        assert {d["runId"] for d in data} == {run}
        assert list(data[0]) == ["runId", "seq", "type", "ts", "payload"]
        assert [d["type"] for d in data][-2:] == ["ReplayTick", "RunFinished"] == [f.event for f in frames][-2:]
        assert [d["ts"] for d in data] == sorted(d["ts"] for d in data)  # due times, one every 2 ms

        resumed = httpx.get(f"{server.url}/api/agents/runs/{run}/stream", headers={"Last-Event-ID": str(events + 1)})
        assert resumed.status_code == 204
        bad = httpx.get(f"{server.url}/api/agents/runs/{run}/stream?fromSeq=x")
        assert bad.status_code == 400 and "fromSeq" in bad.json()["error"]
        assert httpx.get(f"{server.url}/api/agents/runs/{run_id(3)}/stream").status_code == 404
        assert server.stats()["frames"] == events + 1
        pid = server.pid
    assert not _alive(pid)
