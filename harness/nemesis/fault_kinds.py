"""The fault vocabulary: one table from a fault kind to its nemesis context manager.

The kinds are those of a `harness up` stack's fault log (`harness fault`, harness/control/actions.py),
of a schedule entry (harness/nemesis/schedule.py) and of `harness explore`, so a fault written by one
reads the same in the others:

| kind                 | target                                  | params                                          |
|----------------------|-----------------------------------------|-------------------------------------------------|
| `toxic`              | a link (`sse`, `pg_api`, ..., `pg`)     | `toxic` (its type), its attributes, `stream`, `name` |
| `cut`                | a link                                  | -                                               |
| `kill`, `pause`      | a process (`api-0`, `postgres`)         | -                                               |
| `failpoint`          | a process                               | `name`, `action`, `or_kill` (bool)               |
| `terminate_sessions` | an application_name prefix or role, `*` | `role` (informational)                          |
| `lock_outbox`        | a run id, or `*` for every run          | -                                               |
| `buffering`          | `nginx`                                 | `on` (bool)                                     |

`stream` defaults to `downstream`; `name` to toxiproxy's own `<type>_<stream>`. A failpoint with
`or_kill: true` on a target without failpoints is the nearest real fault instead (a kill while events
are in flight, harness/nemesis/stand_in.py), as the toolkit's `failpoint(..., or_kill=True)`.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError
from harness.history import History
from harness.nemesis.db_faults import locked_outbox, terminated_backends
from harness.nemesis.failpoints import armed_failpoint
from harness.nemesis.link_faults import down, link_toxic
from harness.nemesis.nginx_faults import nginx_buffering
from harness.nemesis.process_faults import killed, paused
from harness.nemesis.stand_in import killed_in_flight
from harness.nemesis.toxics import check_direction, check_link, toxic_from_params
from harness.stack import LocalStack

__all__ = ["FAULTS", "FaultKind", "kill_stands_in", "open_fault", "validate_fault"]

Params = Mapping[str, Any]
TOXIC_KEYS = ("toxic", "stream", "name")  # a toxic entry's params that are not the toxic's attributes


@dataclass(frozen=True)
class FaultKind:
    """How to check a fault of this kind given as data, and how to open its context manager."""

    validate: Callable[[str, Params], None]
    open: Callable[[LocalStack, History, str, Params], AbstractContextManager[Any]]


def _only(*allowed: str, required: tuple[str, ...] = ()) -> Callable[[str, Params], None]:
    def validate(target: str, params: Params) -> None:
        extra, missing = sorted(set(params) - set(allowed)), sorted(set(required) - set(params))
        if extra or missing:
            raise ConfigError(f"params: unknown {extra}, missing {missing}; takes {list(allowed) or 'none'}")
    return validate


def _toxic_validate(target: str, params: Params) -> None:
    check_link(target)
    if not isinstance(params.get("toxic"), str):
        raise ConfigError("params.toxic: the toxic's type is required (latency, limit_data, ...)")
    _toxic_spec(params)


def _toxic_spec(params: Params) -> tuple[Any, Any, str]:
    stream = check_direction(params.get("stream", "downstream"))
    spec = toxic_from_params(params["toxic"], {k: v for k, v in params.items() if k not in TOXIC_KEYS})
    return spec, stream, str(params.get("name", ""))


def _toxic_open(stack: LocalStack, history: History, target: str, params: Params) -> AbstractContextManager[Any]:
    spec, stream, name = _toxic_spec(params)
    return link_toxic(stack, history, target, spec, stream, name)


def _link_validate(target: str, params: Params) -> None:
    check_link(target)
    _only()(target, params)


def _failpoint_validate(target: str, params: Params) -> None:
    _only("name", "action", "or_kill", required=("name", "action"))(target, params)
    if not all(isinstance(params[k], str) and params[k] for k in ("name", "action")):
        raise ConfigError("params.name and params.action must be non-empty strings")
    if not isinstance(params.get("or_kill", False), bool):
        raise ConfigError("params.or_kill must be true or false")
    if params.get("or_kill") and not params["action"].endswith("crash"):
        raise ConfigError(f"params.or_kill: only a crash has a kill to stand in for it, not {params['action']!r}")


def kill_stands_in(stack: LocalStack, params: Params) -> bool:
    """Whether a failpoint entry opens as a kill in flight: `or_kill` on a target without failpoints."""
    return bool(params.get("or_kill")) and bool(stack.profile.lacks("failpoints"))


def _failpoint_open(stack: LocalStack, history: History, target: str, params: Params) -> AbstractContextManager[Any]:
    if kill_stands_in(stack, params):
        return killed_in_flight(stack, history, target, params["name"], params["action"])
    return armed_failpoint(stack, history, target, params["name"], params["action"])


def _buffering_validate(target: str, params: Params) -> None:
    _only("on", required=("on",))(target, params)
    if target != "nginx" or not isinstance(params["on"], bool):
        raise ConfigError("buffering: target must be nginx and params.on true or false")


FAULTS: dict[str, FaultKind] = {
    "toxic": FaultKind(_toxic_validate, _toxic_open),
    "cut": FaultKind(_link_validate, lambda s, h, t, p: down(s, h, t)),
    "kill": FaultKind(_only(), lambda s, h, t, p: killed(s, h, t)),
    "pause": FaultKind(_only(), lambda s, h, t, p: paused(s, h, t)),
    "failpoint": FaultKind(_failpoint_validate, _failpoint_open),
    "terminate_sessions": FaultKind(_only("role"), lambda s, h, t, p: terminated_backends(s, h, t)),
    "lock_outbox": FaultKind(_only(), lambda s, h, t, p: locked_outbox(s, h, None if t == "*" else t)),
    "buffering": FaultKind(_buffering_validate, lambda s, h, t, p: nginx_buffering(s, h, p["on"])),
}


def validate_fault(kind: str, target: str, params: Params) -> None:
    """ConfigError (without context: the caller names the entry) when the fault is not well formed."""
    if kind not in FAULTS:
        raise ConfigError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
    FAULTS[kind].validate(target, params)


def open_fault(stack: LocalStack, history: History, kind: str, target: str,
               params: Params) -> AbstractContextManager[Any]:
    """The fault's context manager (not entered): entering applies it, exiting heals it."""
    validate_fault(kind, target, params)
    return FAULTS[kind].open(stack, history, target, params)
