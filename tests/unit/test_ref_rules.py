"""Pure rules of the service: the stream's end, script bounds, event validation, bus payloads."""

from __future__ import annotations

import json
from datetime import datetime, timezone

import pytest

from reference_impl.event_log import terminal_state
from reference_impl.events import Event
from reference_impl.http_util import ApiError, parse_run_id
from reference_impl.outbox_publisher import MAX_NOTIFY_BYTES, bus_payload
from reference_impl.queue_worker import step_payload
from reference_impl.runs import StreamStatus
from reference_impl.script import Script, ScriptError, parse_script
from reference_impl.validation import validate_event


@pytest.mark.parametrize("status,cursor,finished", [
    (StreamStatus("started", 5, 3, True), 5, False),          # not terminal: keep streaming
    (StreamStatus("succeeded", 5, 6, False), 5, True),        # at the terminal seq: 204
    (StreamStatus("succeeded", 5, 6, False), 9, True),        # past it
    (StreamStatus("succeeded", 5, 5, False), 4, False),       # RunFinished not yet published: wait
    (StreamStatus("cancelled", 5, None, False), 3, True),     # cancelled by hand, outbox row deleted
    (StreamStatus("cancelled", 5, None, True), 3, False),     # ... but published events remain to send
    (StreamStatus("cancelled", 5, 4, False), 3, False),       # outbox still publishing
])
def test_finished_for(status: StreamStatus, cursor: int, finished: bool) -> None:
    assert status.finished_for(cursor) is finished


def test_script_defaults_and_bounds() -> None:
    assert parse_script(None) == Script()
    assert parse_script({"steps": 0, "interval_ms": 600000, "payload_bytes": 1000000, "outcome": "failed"}) \
        == Script(0, 600000, 1000000, "failed")


@pytest.mark.parametrize("raw", [
    {"steps": -1}, {"steps": 100001}, {"interval_ms": 600001}, {"payload_bytes": 1000001},
    {"outcome": "done"}, {"steps": True}, {"steps": "3"}, {"steps": 1.0}, {"extra": 1}, [1], "x",
])
def test_script_rejects(raw: object) -> None:
    with pytest.raises(ScriptError):
        parse_script(raw)


def test_validate_event() -> None:
    assert validate_event({"type": "RunStep", "payload": {"a": 1}}) == ("RunStep", {"a": 1})
    assert validate_event({"type": "Custom.Thing"}) == ("Custom.Thing", {})
    bads: list[object] = [{"type": ""}, {"type": "a b"}, {"type": 3}, [],
                          {"type": "RunFinished", "payload": {"status": "x"}}]
    for bad in bads:
        with pytest.raises(ApiError):
            validate_event(bad)


def test_terminal_state() -> None:
    assert terminal_state("RunFinished", {"status": "failed"}) == "failed"
    assert terminal_state("RunFinished", {}) == "succeeded"
    assert terminal_state("RunStep", {"status": "failed"}) is None


def test_run_id_must_be_a_uuid() -> None:
    assert parse_run_id("7753D444-5C9A-4EAF-BA3A-D6D284D05375") == "7753d444-5c9a-4eaf-ba3a-d6d284d05375"
    for bad in ("x", "1", "7753d444-5c9a-4eaf-ba3a-d6d284d0537", "'; DROP TABLE runs; --"):
        with pytest.raises(ApiError):
            parse_run_id(bad)


def test_bus_payload_carries_small_events_and_drops_big_ones() -> None:
    ts = datetime(2025, 1, 2, 3, 4, 5, 6000, tzinfo=timezone.utc)
    small = json.loads(bus_payload(Event("r", 1, "RunStep", {"a": 1}, ts)))
    assert small == {"runId": "r", "seq": 1, "type": "RunStep", "ts": "2025-01-02T03:04:05.006000Z",
                     "event": {"runId": "r", "seq": 1, "type": "RunStep", "ts": "2025-01-02T03:04:05.006000Z",
                               "payload": {"a": 1}}}
    big = bus_payload(Event("r", 2, "RunStep", step_payload(0, 9000), ts))
    assert "event" not in json.loads(big) and len(big) < MAX_NOTIFY_BYTES


def test_step_payload_size() -> None:
    assert step_payload(4, 0) == {"step": 4, "data": ""}
    assert len(step_payload(1, 1000)["data"]) == 1000
