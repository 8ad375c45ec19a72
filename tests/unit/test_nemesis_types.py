"""Typed toxics and schedule parsing: plain data, no stack."""
from __future__ import annotations

import json
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.nemesis import (
    FAULTS,
    TOXIC_TYPES,
    Bandwidth,
    Latency,
    LimitData,
    ResetPeer,
    Slicer,
    SlowClose,
    Timeout,
    parse_schedule,
    toxic_from_params,
)


@pytest.mark.parametrize(("spec", "type_", "attrs"), [
    (Latency(latency=200, jitter=50), "latency", {"latency": 200, "jitter": 50}),
    (Bandwidth(rate=4), "bandwidth", {"rate": 4}),
    (SlowClose(delay=300), "slow_close", {"delay": 300}),
    (Timeout(timeout=0), "timeout", {"timeout": 0}),
    (ResetPeer(timeout=100), "reset_peer", {"timeout": 100}),
    (Slicer(average_size=8, size_variation=2, delay=1000), "slicer",
     {"average_size": 8, "size_variation": 2, "delay": 1000}),
    (LimitData(bytes=300), "limit_data", {"bytes": 300}),
])
def test_to_toxic_carries_type_attributes_and_direction(spec: Any, type_: str, attrs: dict[str, int]) -> None:
    toxic = spec.to_toxic("upstream")
    assert (toxic.type, toxic.stream, toxic.toxicity, dict(toxic.attributes)) == (type_, "upstream", 1.0, attrs)
    assert spec.to_toxic().stream == "downstream"
    assert toxic.to_json()["attributes"] == attrs
    assert toxic_from_params(type_, attrs) == spec


def test_every_toxiproxy_toxic_has_a_type() -> None:
    assert set(TOXIC_TYPES) == {"latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data"}


@pytest.mark.parametrize("bad", [
    lambda: Latency(latency=-1),
    lambda: LimitData(bytes=1.5),  # type: ignore[arg-type]  # a wrong type on purpose
    lambda: Bandwidth(rate=True),
    lambda: toxic_from_params("latency", {"lat": 1}),
    lambda: toxic_from_params("nope", {}),
    lambda: Latency().to_toxic("sideways"),  # type: ignore[arg-type]  # a wrong stream on purpose
])
def test_bad_toxics_are_config_errors(bad: Any) -> None:
    with pytest.raises(ConfigError):
        bad()


GOOD = [
    {"fault": "latency", "target": "pg_api", "params": {"latency": 100, "stream": "upstream"}, "start_s": 0, "end_s": 1},
    {"fault": "down", "target": "sse", "start_s": 0.5, "end_s": 2},
    {"fault": "kill", "target": "outbox-worker-0", "params": {}, "start_s": 1, "end_s": 1.5},
    {"fault": "failpoint", "target": "api-0", "params": {"name": "stream.after_backfill", "action": "sleep(100)"},
     "start_s": 0, "end_s": 3},
    {"fault": "terminate_backends", "target": "api", "start_s": 2, "end_s": 2.1},
    {"fault": "lock_outbox", "target": "*", "start_s": 0, "end_s": 1},
]


def test_a_good_schedule_parses_and_round_trips_as_json() -> None:
    entries = parse_schedule(GOOD)
    assert [e.fault for e in entries] == [g["fault"] for g in GOOD]
    again = parse_schedule(json.loads(json.dumps([e.to_dict() for e in entries])))
    assert [e.to_dict() for e in again] == [e.to_dict() for e in entries]


def test_registry_names_every_kind() -> None:
    assert set(FAULTS) >= set(TOXIC_TYPES) | {"down", "kill", "pause", "failpoint", "terminate_backends", "lock_outbox"}


def _entry(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {"fault": "latency", "target": "pg_api", "params": {"latency": 10}, "start_s": 0, "end_s": 1}
    base.update(changes)
    return {k: v for k, v in base.items() if v is not ...}


@pytest.mark.parametrize(("entry", "says"), [
    (_entry(fault="flood"), "unknown fault"),
    (_entry(target="pg_nope"), "unknown link"),
    (_entry(target=""), "target"),
    (_entry(params={"latency": 10, "stream": "sideways"}), "direction"),
    (_entry(params={"latncy": 10}), "unknown attribute"),
    (_entry(params={"latency": -5}), "non-negative"),
    (_entry(start_s=2, end_s=1), "after start_s"),
    (_entry(start_s=-1), "start_s"),
    (_entry(end_s="soon"), "end_s"),
    (_entry(end_s=...), "missing keys"),
    (_entry(when=3), "unknown keys"),
    (_entry(fault="down", target="sse", params={"x": 1}), "no params"),
    (_entry(fault="failpoint", target="api-0", params={"name": "x"}), "name"),
    (_entry(params=[1]), "params must be an object"),
    ("latency", "expected an object"),
])
def test_bad_entries_are_config_errors_naming_the_entry(entry: Any, says: str) -> None:
    with pytest.raises(ConfigError, match="schedule entry 1") as err:
        parse_schedule([GOOD[0], entry])
    assert says in str(err.value)
