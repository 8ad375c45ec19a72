"""`--fault SPEC`: a fault of the load written on one line, read into the schedule's entries
(harness/nemesis/schedule.py: the project's one schedule format, in the fault log's vocabulary).

    SPEC   := WHAT "@" WHEN
    WHAT   := LINK ":" TOXIC ["=" VALUE] {"," ATTR "=" VALUE}      a toxic on a link
            | KIND ":" TARGET {"," PARAM "=" VALUE}                 any other fault kind
    WHEN   := START "-" END          held from START to END
            | START                  held from START to the end of the load
            | "every" PERIOD ["/" HOLD]   held HOLD (default 1s) at PERIOD, 2 x PERIOD, ... before the end

`VALUE` after the toxic is its first attribute (`latency=300`: 300 ms; `reset_peer`: timeout 0);
`stream=upstream` picks the direction. Times are durations (`20s`, `1m`, `500ms`) from the start of the
load. Examples: `pg_outbox:latency=300@20s-40s`, `sse:reset_peer@every10s`, `kill:outbox-worker-0@30s`.
"""
from __future__ import annotations

import dataclasses
from typing import Any

from harness.errors import ConfigError, HarnessError
from harness.nemesis.fault_kinds import FAULTS
from harness.nemesis.schedule import Entry
from harness.nemesis.toxics import LINKS, TOXIC_TYPES
from harness.service_logs import parse_duration

__all__ = ["DEFAULT_HOLD_S", "parse_fault_spec", "parse_fault_specs"]

DEFAULT_HOLD_S = 1.0  # how long each repetition of an `every` fault is held


def parse_fault_specs(specs: list[str], duration_s: float) -> list[Entry]:
    return [entry for spec in specs for entry in parse_fault_spec(spec, duration_s)]


def parse_fault_spec(spec: str, duration_s: float) -> list[Entry]:
    """The entries of one `--fault` spec within a load of `duration_s`; ConfigError quoting the spec."""
    try:
        what, sep, when = spec.partition("@")
        if not sep or not what or not when:
            raise ConfigError("expected WHAT@WHEN, e.g. pg_outbox:latency=300@20s-40s")
        fault, target, params = _what(what)
        entries = [Entry.from_dict({"fault": fault, "target": target, "params": params, "start_s": start,
                                    "end_s": end}) for start, end in _windows(when, duration_s)]
    except HarnessError as exc:
        raise ConfigError(f"--fault {spec!r}: {exc}") from None
    return entries


def _what(text: str) -> tuple[str, str, dict[str, Any]]:
    head, sep, rest = text.partition(":")
    if not sep or not rest:
        raise ConfigError(f"expected LINK:TOXIC or KIND:TARGET before @, got {text!r}")
    first, *pairs = rest.split(",")
    params = dict(_pair(p) for p in pairs)
    if head in LINKS:
        toxic, _, value = first.partition("=")
        if toxic not in TOXIC_TYPES:
            raise ConfigError(f"unknown toxic {toxic!r}; toxics: {', '.join(sorted(TOXIC_TYPES))}")
        if value:
            params[dataclasses.fields(TOXIC_TYPES[toxic])[0].name] = _number(value)
        return "toxic", head, {"toxic": toxic, **params}
    if head in FAULTS and head != "toxic":
        return head, first, params
    raise ConfigError(f"{head!r} is neither a link ({', '.join(LINKS)}) nor a fault kind"
                      f" ({', '.join(k for k in FAULTS if k != 'toxic')})")


def _pair(text: str) -> tuple[str, Any]:
    key, sep, value = text.partition("=")
    if not sep or not key:
        raise ConfigError(f"expected NAME=VALUE, got {text!r}")
    return key, value if key in ("stream", "name", "action", "role") else _number(value)


def _number(text: str) -> Any:
    if text in ("true", "false"):
        return text == "true"
    try:
        return int(text)
    except ValueError:
        raise ConfigError(f"expected a whole number, got {text!r}") from None


def _windows(when: str, duration_s: float) -> list[tuple[float, float]]:
    if when.startswith("every"):
        period_text, _, hold_text = when.removeprefix("every").partition("/")
        period = _seconds(period_text)
        hold = _seconds(hold_text) if hold_text else DEFAULT_HOLD_S
        if period <= 0 or hold >= period:
            raise ConfigError(f"every PERIOD/HOLD needs 0 < HOLD < PERIOD, got {when!r}")
        starts = [period * k for k in range(1, int(duration_s // period) + 1)]
        windows = [(s, min(s + hold, duration_s)) for s in starts if s < duration_s]
    else:
        start_text, dash, end_text = when.partition("-")
        start = _seconds(start_text)
        windows = [(start, _seconds(end_text) if dash else duration_s)]
    if not windows or any(end <= start or end > duration_s for start, end in windows):
        raise ConfigError(f"{when!r} is not a window inside the load's {duration_s:g}s")
    return windows


def _seconds(text: str) -> float:
    try:
        return parse_duration(text.strip())
    except HarnessError:
        raise ConfigError(f"cannot read the time {text!r}: use e.g. 20s, 1m or 500ms") from None
