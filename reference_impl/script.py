"""The scripted event sequence of a run's job, validated from the POST body (pure)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from .events import OUTCOMES

__all__ = ["Script", "ScriptError", "parse_script"]

# (field, minimum, maximum, default)
_BOUNDS: dict[str, tuple[int, int, int]] = {
    "steps": (0, 100_000, 10),
    "interval_ms": (0, 600_000, 100),
    "payload_bytes": (0, 1_000_000, 16),
}


class ScriptError(ValueError):
    """A script value out of bounds or of the wrong type (answered with 400)."""


@dataclass(frozen=True)
class Script:
    steps: int = 10
    interval_ms: int = 100
    payload_bytes: int = 16
    outcome: str = "succeeded"

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _bounded(raw: dict[str, Any], name: str) -> int:
    low, high, default = _BOUNDS[name]
    value = raw.get(name, default)
    # bool is an int in Python; `true` steps is a client bug, not 1
    if isinstance(value, bool) or not isinstance(value, int):
        raise ScriptError(f"script.{name} must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ScriptError(f"script.{name} must be within {low}..{high}, got {value}")
    return value


def parse_script(raw: Any) -> Script:
    if raw is None:
        return Script()
    if not isinstance(raw, dict):
        raise ScriptError("script must be a JSON object")
    unknown = set(raw) - set(_BOUNDS) - {"outcome"}
    if unknown:
        raise ScriptError(f"unknown script field(s): {', '.join(sorted(unknown))}")
    outcome = raw.get("outcome", "succeeded")
    if outcome not in OUTCOMES:
        raise ScriptError(f"script.outcome must be one of {'|'.join(OUTCOMES)}, got {outcome!r}")
    return Script(_bounded(raw, "steps"), _bounded(raw, "interval_ms"), _bounded(raw, "payload_bytes"), outcome)
