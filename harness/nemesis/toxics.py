"""Typed toxics: one small frozen value per toxiproxy toxic, its attributes as its fields.

Field names and units are toxiproxy's own (v2.12 `toxics/*.go`), so `to_toxic` is a straight copy:

| class        | type         | fields (units)                                              |
|--------------|--------------|-------------------------------------------------------------|
| `Latency`    | `latency`    | `latency` ms added per chunk, `jitter` ms (+/-)              |
| `Bandwidth`  | `bandwidth`  | `rate` KB/s                                                 |
| `SlowClose`  | `slow_close` | `delay` ms before the close is passed on                    |
| `Timeout`    | `timeout`    | `timeout` ms, then close (0: never; data is dropped meanwhile) |
| `ResetPeer`  | `reset_peer` | `timeout` ms, then RST (only connections opened while it exists) |
| `Slicer`     | `slicer`     | `average_size` bytes, `size_variation` bytes, `delay` microseconds |
| `LimitData`  | `limit_data` | `bytes` passed before the connection is closed              |

Policy (which link, which direction) is not part of a toxic: it is given when the toxic is applied
(`harness.nemesis.link_faults.link_toxic`). Toxicity is always 1.0: schedules are deterministic.
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Union, get_args

from harness.errors import ConfigError
from harness.model import LINKS
from harness.stack import Toxic

__all__ = ["Bandwidth", "Direction", "LINKS", "Latency", "LimitData", "LinkToxic", "ResetPeer", "SlowClose",
           "Slicer", "TOXIC_TYPES", "Timeout", "check_direction", "check_link", "toxic_from_params"]

Direction = Literal["upstream", "downstream"]


@dataclass(frozen=True)
class _ToxicSpec:
    type: ClassVar[str]

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ConfigError(f"toxic {self.type}: {f.name} must be a non-negative integer, got {value!r}")

    def attributes(self) -> dict[str, int]:
        return dataclasses.asdict(self)

    def to_toxic(self, stream: Direction = "downstream", name: str = "") -> Toxic:
        """The stack's `Toxic` for this toxic on `stream` (toxicity 1.0)."""
        check_direction(stream)
        return Toxic(type=self.type, stream=stream, toxicity=1.0, attributes=self.attributes(), name=name)


@dataclass(frozen=True)
class Latency(_ToxicSpec):
    type: ClassVar[str] = "latency"
    latency: int = 0
    jitter: int = 0


@dataclass(frozen=True)
class Bandwidth(_ToxicSpec):
    type: ClassVar[str] = "bandwidth"
    rate: int = 0


@dataclass(frozen=True)
class SlowClose(_ToxicSpec):
    type: ClassVar[str] = "slow_close"
    delay: int = 0


@dataclass(frozen=True)
class Timeout(_ToxicSpec):
    type: ClassVar[str] = "timeout"
    timeout: int = 0


@dataclass(frozen=True)
class ResetPeer(_ToxicSpec):
    type: ClassVar[str] = "reset_peer"
    timeout: int = 0


@dataclass(frozen=True)
class Slicer(_ToxicSpec):
    type: ClassVar[str] = "slicer"
    average_size: int = 0
    size_variation: int = 0
    delay: int = 0


@dataclass(frozen=True)
class LimitData(_ToxicSpec):
    type: ClassVar[str] = "limit_data"
    bytes: int = 0


LinkToxic = Union[Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData]
TOXIC_TYPES: dict[str, type[_ToxicSpec]] = {
    cls.type: cls for cls in (Latency, Bandwidth, SlowClose, Timeout, ResetPeer, Slicer, LimitData)}


def toxic_from_params(type_: str, params: Mapping[str, Any]) -> _ToxicSpec:
    """A typed toxic from plain data (a schedule entry's params); ConfigError names what is wrong."""
    cls = TOXIC_TYPES.get(type_)
    if cls is None:
        raise ConfigError(f"unknown toxic type {type_!r}; known: {', '.join(sorted(TOXIC_TYPES))}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(params) - names)
    if unknown:
        raise ConfigError(f"toxic {type_}: unknown attribute(s) {unknown}; known: {sorted(names)}")
    return cls(**dict(params))


def check_link(link: str) -> str:
    if link not in LINKS:
        raise ConfigError(f"unknown link {link!r}; links: {', '.join(LINKS)}")
    return link


def check_direction(stream: str) -> Direction:
    if stream not in get_args(Direction):
        raise ConfigError(f"unknown direction {stream!r}; use upstream or downstream")
    return stream  # type: ignore[return-value]
