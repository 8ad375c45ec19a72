"""Failpoints: named points in the code that tests arm with crash, sleep, error or hang.

Spec grammar (FAILPOINTS and the admin endpoint): `name=action;name=action`, where action is
`off | crash | sleep(MS) | error | hang`, optionally prefixed by `N*` (fire N times, then disarm).
`await failpoint("outbox.after_publish")` costs one dict lookup when nothing is armed.
"""

from __future__ import annotations

import asyncio
import os
import re
import signal
from dataclasses import dataclass, replace

from .logs import Logger

__all__ = [
    "NAMES", "Action", "FailpointError", "FailpointSpecError", "Registry",
    "failpoint", "parse_action", "parse_spec", "registry",
]

NAMES = frozenset({
    "append.before_commit", "outbox.before_publish", "outbox.after_publish", "outbox.before_commit",
    "stream.after_subscribe", "stream.after_backfill", "queue.before_append",
})
_ACTION = re.compile(r"^(?:(?P<count>\d+)\*)?(?P<kind>off|crash|error|hang|sleep\((?P<ms>\d+)\))$")
_log = Logger("failpoints")


class FailpointSpecError(ValueError):
    """A failpoint spec that does not parse or names an unknown failpoint."""


class FailpointError(RuntimeError):
    """Raised by an armed `error` failpoint: the surrounding request or transaction fails."""


@dataclass(frozen=True)
class Action:
    kind: str  # off | crash | sleep | error | hang
    sleep_ms: int = 0
    remaining: int | None = None  # None: fires forever

    def __str__(self) -> str:
        body = f"sleep({self.sleep_ms})" if self.kind == "sleep" else self.kind
        return body if self.remaining is None else f"{self.remaining}*{body}"


def parse_action(text: str) -> Action:
    match = _ACTION.match(text.strip().replace(" ", ""))
    if match is None:
        raise FailpointSpecError(f"bad failpoint action {text!r}: expected [N*]off|crash|sleep(MS)|error|hang")
    kind = match["kind"].split("(")[0]
    count = int(match["count"]) if match["count"] is not None else None
    if count == 0:
        raise FailpointSpecError(f"bad failpoint action {text!r}: count must be at least 1")
    return Action(kind=kind, sleep_ms=int(match["ms"] or 0), remaining=count)


def check_name(name: str) -> str:
    if name not in NAMES:
        raise FailpointSpecError(f"unknown failpoint {name!r}; known: {', '.join(sorted(NAMES))}")
    return name


def parse_spec(spec: str) -> dict[str, Action]:
    """Parse `name=action;name=action` (empty items ignored, so a trailing ';' is fine)."""
    armed: dict[str, Action] = {}
    for item in filter(None, (part.strip() for part in spec.split(";"))):
        name, sep, action = item.partition("=")
        if not sep:
            raise FailpointSpecError(f"bad failpoint item {item!r}: expected name=action")
        armed[check_name(name.strip())] = parse_action(action)
    return armed


class Registry:
    """The process's armed failpoints. Changes bump a generation that releases `hang`."""

    def __init__(self) -> None:
        self._armed: dict[str, Action] = {}
        self._changed = asyncio.Event()

    def load(self, spec: str) -> None:
        for name, action in parse_spec(spec).items():
            self.set(name, action)

    def set(self, name: str, action: Action) -> None:
        if action.kind == "off":
            self._armed.pop(check_name(name), None)
        else:
            self._armed[check_name(name)] = action
        self._changed.set()  # wake every hang; they re-check and re-wait on a fresh event
        self._changed = asyncio.Event()

    def clear(self, name: str) -> None:
        self.set(name, Action("off"))

    def is_armed(self, name: str) -> bool:
        return name in self._armed

    def snapshot(self) -> dict[str, str]:
        return {name: str(action) for name, action in sorted(self._armed.items())}

    def take(self, name: str) -> Action | None:
        """Consume one firing of `name`, disarming it when its count runs out."""
        action = self._armed.get(name)
        if action is None or action.remaining is None:
            return action
        if action.remaining <= 1:
            del self._armed[name]
        else:
            self._armed[name] = replace(action, remaining=action.remaining - 1)
        return action

    async def fire(self, name: str) -> None:
        action = self.take(name)
        if action is None:
            return
        _log.warn("failpoint.fired", name=name, action=str(action))
        await self._perform(name, action)

    async def _perform(self, name: str, action: Action) -> None:
        if action.kind == "crash":
            os.kill(os.getpid(), signal.SIGKILL)  # the point is an unclean death: no cleanup, no flush
            await asyncio.sleep(3600)
        elif action.kind == "sleep":
            await asyncio.sleep(action.sleep_ms / 1000)
        elif action.kind == "error":
            raise FailpointError(f"failpoint {name}: injected error")
        elif action.kind == "hang":
            await self._changed.wait()  # blocks until anyone changes the failpoints


registry = Registry()


async def failpoint(name: str) -> None:
    """Fire the named failpoint of the process registry if it is armed."""
    if registry._armed:  # fast path: nothing armed anywhere
        await registry.fire(name)
