"""Server-Sent-Events wire format (pure functions returning bytes).

A frame is `id: <seq>\nevent: <type>\ndata: <json>\n\n`; the JSON is one line (json.dumps never
emits a raw newline), so one `data:` field always suffices.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

__all__ = ["HEARTBEAT", "event_data", "event_frame", "frame", "retry_frame"]

HEARTBEAT = b": heartbeat\n\n"


def _clean(field: str) -> str:
    # A CR or LF inside id/event would end the field early and let a value forge frames.
    return field.replace("\r", " ").replace("\n", " ")


def frame(seq: int, event_type: str, data_json: str) -> bytes:
    return f"id: {seq}\nevent: {_clean(event_type)}\ndata: {data_json}\n\n".encode()


def event_data(run_id: str, seq: int, event_type: str, ts: str, payload: Any) -> str:
    """The frame's data: `{"runId","seq","type","ts","payload"}` in that order."""
    return json.dumps({"runId": run_id, "seq": seq, "type": event_type, "ts": ts, "payload": payload},
                      separators=(",", ":"))


def event_frame(event: Mapping[str, Any]) -> bytes:
    """Frame an event dict shaped like event_data's output."""
    data = event_data(event["runId"], event["seq"], event["type"], event["ts"], event["payload"])
    return frame(event["seq"], event["type"], data)


def retry_frame(ms: int) -> bytes:
    return f"retry: {ms}\n\n".encode()
