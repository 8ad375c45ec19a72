from __future__ import annotations

import json

from reference_impl.sse_framing import HEARTBEAT, event_data, event_frame, frame, retry_frame


def test_frame_layout() -> None:
    assert frame(3, "RunStep", '{"a":1}') == b'id: 3\nevent: RunStep\ndata: {"a":1}\n\n'


def test_event_data_key_order_and_compactness() -> None:
    data = event_data("r1", 2, "RunStep", "2025-01-01T00:00:00.000000Z", {"step": 0})
    assert list(json.loads(data)) == ["runId", "seq", "type", "ts", "payload"]
    assert "\n" not in data


def test_event_frame_from_dict() -> None:
    event = {"runId": "r", "seq": 9, "type": "RunFinished", "ts": "t", "payload": {"status": "failed"}}
    out = event_frame(event).decode()
    assert out.startswith("id: 9\nevent: RunFinished\ndata: ")
    assert json.loads(out.split("data: ", 1)[1]) == event
    assert out.endswith("\n\n")


def test_newlines_in_payload_stay_escaped() -> None:
    out = event_frame({"runId": "r", "seq": 1, "type": "X", "ts": "t", "payload": "a\nb\r\n"})
    assert out.count(b"\n") == 4  # id, event, data lines + blank line


def test_type_cannot_inject_fields() -> None:
    assert b"\nid: 99" not in frame(1, "X\nid: 99", "{}")


def test_heartbeat_and_retry() -> None:
    assert HEARTBEAT == b": heartbeat\n\n"
    assert retry_frame(500) == b"retry: 500\n\n"
