"""Typed toxics: plain data, no stack."""
from __future__ import annotations

from typing import Any

import pytest

from harness.errors import ConfigError
from harness.nemesis import (
    TOXIC_TYPES,
    Bandwidth,
    Latency,
    LimitData,
    ResetPeer,
    Slicer,
    SlowClose,
    Timeout,
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

