"""The checkers' options: one frozen dataclass, one typed field per option a checker reads.

Scenarios pass options as keyword arguments and `checks.json` keeps them as plain JSON; both come in
through `CheckOptions.from_mapping`, which refuses a key no checker reads (a misspelt option would
otherwise run its check with the default, silently).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection, Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal, Optional, Union, get_args

from harness.errors import ConfigError

# True/False for every consumer; a mapping of consumer-id prefixes to bools (the longest matching
# prefix wins, no match: must); or the prefixes of the consumers that must (the others need not).
RequireTerminal = Union[bool, Mapping[str, bool], tuple[str, ...]]
LagSource = Literal["publish", "delivery"]
LagBasis = Literal["avg", "p50", "p95", "p99", "max"]


@dataclass(frozen=True)
class CheckOptions:
    # exactly_once: which consumers must reach the run's terminal event (else their prefix is judged)
    require_terminal: RequireTerminal = True
    # exactly_once: an owed event published this long before a consumer gave up on a live
    # connection was withheld (far above any lag class: a publish the live path never carried)
    withheld_after_s: float = 5.0
    # ordering: slack between cursor+1's publish time and the first frame's receipt
    ordering_tolerance_s: float = 0.1
    # terminal: no reconnect after the terminal answered 204 makes the verdict unknown
    require_204_probe: bool = False
    # no_append_after_terminal: the contract's refusal of an append after the terminal
    refusal_status: tuple[int, ...] = (409,)
    refusal_message: str = "Non-monotonic seq append"  # empty: any message
    # lag: which samples (None: "publish" with a snapshot, else "delivery")
    lag_source: Optional[LagSource] = None
    lag_basis: LagBasis = "p95"  # the summary statistic compared with the bound
    lag_bound_ms: float = 500.0  # the runbook's warning ceiling (lag.WARNING_MS)
    lag_settle_s: float = 1.0  # samples this long after a fault on their path are not steady state
    lag_min_samples: Optional[int] = None  # fewer steady samples: unknown (None: lag's 5, delivered_lag's 1)
    lag_fail_on_trend: bool = True  # an increasing trend fails even under the bound
    # heartbeat: a silence above interval + tolerance fails
    heartbeat_interval_s: float = 15.0
    heartbeat_tolerance_s: float = 2.0
    heartbeat_exclude_faults: bool = True  # silences overlapping a fault on the stream's path are excused
    # metrics_agree: how long after a fault a metric line is still excused by it
    metrics_settle_s: float = 5.0
    # metrics_agree: a line's lag_ms may differ from the row's by max(ms, ratio x lag)
    metrics_lag_tolerance_ms: float = 25.0
    metrics_lag_tolerance_ratio: float = 0.1

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> CheckOptions:
        """Options from keyword arguments or JSON; an unknown key or a value of the wrong kind is a
        `ConfigError` naming the known keys."""
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
        if unknown:
            raise ConfigError(f"unknown check option(s) {unknown}; known: {', '.join(known)}")
        values = {}
        for key, value in data.items():
            try:
                values[key] = _CONVERT.get(key, _like(known[key].default))(value)
            except (TypeError, ValueError) as exc:
                raise ConfigError(f"check option {key}={value!r}: {exc}") from exc
        return cls(**values)

    def to_dict(self) -> dict[str, Any]:
        """Every option as plain JSON (tuples become lists), for `checks.json`."""
        return json.loads(json.dumps(asdict(self)))  # type: ignore[no-any-return]


DEFAULT_OPTIONS = CheckOptions()


def _like(default: Any) -> Callable[[Any], Any]:
    """A converter to the kind of `default`: JSON numbers to float or int, bools only from bools."""
    if isinstance(default, bool):
        return _bool
    if isinstance(default, (int, float)):
        return type(default)
    return str


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("expected true or false")
    return value


def _require_terminal(value: Any) -> RequireTerminal:
    if isinstance(value, bool):
        return value
    if isinstance(value, Mapping):
        return {str(prefix): _bool(must) for prefix, must in value.items()}
    if isinstance(value, Collection) and not isinstance(value, str):
        return tuple(str(prefix) for prefix in value)
    raise TypeError("expected a bool, a mapping of consumer-id prefixes to bools, or a list of prefixes")


def _statuses(value: Any) -> tuple[int, ...]:
    if isinstance(value, Collection) and not isinstance(value, str):
        return tuple(int(s) for s in value)
    return (int(value),)


def _choice(*allowed: object) -> Callable[[Any], Any]:
    def convert(value: Any) -> Any:
        if value not in allowed:
            raise ValueError(f"expected one of {allowed}")
        return value
    return convert


_CONVERT: dict[str, Callable[[Any], Any]] = {
    "require_terminal": _require_terminal,
    "refusal_status": _statuses,
    "refusal_message": lambda v: str(v or ""),
    "lag_source": _choice(None, *get_args(LagSource)),
    "lag_basis": _choice(*get_args(LagBasis)),
    "lag_min_samples": lambda v: None if v is None else int(v),
}

__all__ = ["DEFAULT_OPTIONS", "CheckOptions", "LagBasis", "LagSource", "RequireTerminal"]
