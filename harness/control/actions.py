"""What the owner does for each control request, on its own LocalStack and through harness.nemesis,
so each fault touches only its target and the owner's bookkeeping (pids, paused, dead) stays true.
Faults are opened by kind through harness.nemesis.fault_kinds, the schedules' vocabulary, so a line of
the fault log is a schedule entry's fault, target and params.

Every action returns plain data: `{"lines": [...]}` saying what changed, or the state for `list`. A bad
name is a ConfigError listing the valid ones (the client's exit 2).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from harness.control.book import Active, FaultBook
from harness.errors import ConfigError
from harness.history import History
from harness.nemesis import open_fault, set_failpoint, toxic_from_params
from harness.nemesis.toxics import check_direction
from harness.runbook.recovery import OUTBOX_ROLE, RestartResult, restart_outbox_in_stack
from harness.stack import LocalStack
from harness.stack.nginx import NginxMode

__all__ = ["ACTIONS", "Owned", "SESSION_ROLES"]

# `db terminate-sessions --role`: the sessions' application_name prefix (harness/nemesis/db_faults.py).
SESSION_ROLES = {"api": "api", "outbox": "outbox-worker", "queue": "queue-worker"}
NOT_A_TARGET = ("toxiproxy",)  # every link lives in it: killing it is not a fault of one target


@dataclass
class Owned:
    """What the actions act on: the owner's stack, its book of faults, and a history for the nemesis."""

    stack: LocalStack
    book: FaultBook
    history: History = field(default_factory=History)


def _lines(*lines: str) -> dict[str, Any]:
    return {"lines": list(lines)}


def _for(for_s: float | None) -> str:
    return "" if for_s is None else f" for {for_s:g}s"


def _link(o: Owned, link: str) -> str:
    """A link of this stack (an `all` target's has `pg` instead of the role links)."""
    if link not in o.stack.links:
        raise ConfigError(f"unknown link {link!r}; links: {', '.join(o.stack.links)}")
    return link


def _process(o: Owned, name: str) -> str:
    names = [p.name for p in o.stack.managed_processes() if p.name not in NOT_A_TARGET]
    if name not in names:
        raise ConfigError(f"unknown process {name!r}; processes: {', '.join(names)}")
    return name


# ---- state -------------------------------------------------------------------------------------------

def list_state(o: Owned) -> dict[str, Any]:
    api, now = o.stack.api, time.time()
    assert api is not None
    links = []
    for link in o.stack.links:
        proxy = api.get_proxy(o.stack.proxy_name(link))
        links.append({"name": link, "enabled": proxy.enabled,
                      "toxics": [{"name": t.name, "type": t.type, "stream": t.stream,
                                  "attributes": dict(t.attributes)} for t in proxy.toxics]})
    procs = [{"name": p.name, "role": p.spec.extra.get("role", p.name), "pid": p.pid,
              "state": "paused" if p.paused else "running" if p.running else "dead"}
             for p in o.stack.managed_processes() if p.name not in NOT_A_TARGET]
    failpoints = [{"process": a.target, **a.params} for a in o.book.active if a.fault == "failpoint"]
    nginx = o.stack.nginx
    return {"links": links, "processes": procs, "failpoints": failpoints,
            "nginx_buffering": None if nginx is None else nginx.config.mode is NginxMode.BUFFERED,
            "faults": [a.describe(now) for a in o.book.active]}


# ---- links -------------------------------------------------------------------------------------------

def _attr_ints(toxic: str, attrs: dict[str, str]) -> dict[str, int]:
    try:
        return {k: int(v) for k, v in attrs.items()}
    except ValueError:
        raise ConfigError(f"toxic {toxic}: attributes are integers, got {attrs}") from None


def add(o: Owned, link: str, toxic: str, attrs: dict[str, str], direction: str,
        for_s: float | None = None) -> dict[str, Any]:
    spec = toxic_from_params(toxic, _attr_ints(toxic, attrs))
    stream = check_direction(direction)
    name = f"{toxic}_{stream}"  # toxiproxy's own default name: one toxic of a type per link and direction
    assert o.stack.api is not None
    existing = [t.name for t in o.stack.api.list_toxics(o.stack.proxy_name(_link(o, link)))]
    if name in existing:
        raise ConfigError(f"{link} already has a toxic {name}; remove it first (`harness fault remove {link} {name}`)")
    active, _ = _start(o, "toxic", link, {"name": name, "toxic": toxic, "stream": stream, **spec.attributes()}, for_s)
    return _lines(f"added {name} on {link} {spec.attributes()} ({active.id}{_for(for_s)})")


def remove(o: Owned, link: str, name: str) -> dict[str, Any]:
    _link(o, link)
    for active in o.book.find("toxic", link, name=name):
        o.book.end(active)
        return _lines(f"removed {name} from {link} ({active.id})")
    names = [a.params["name"] for a in o.book.active if a.fault == "toxic" and a.target == link]
    raise ConfigError(f"no toxic {name!r} on {link}; its toxics: {', '.join(names) or 'none'}")


def _start(o: Owned, fault: str, target: str, params: dict[str, Any], for_s: float | None) -> tuple[Active, Any]:
    """Start the fault (harness.nemesis.fault_kinds: the schedule's vocabulary) and log it in the book."""
    return o.book.start(fault, target, params, open_fault(o.stack, o.history, fault, target, params), for_s)


def _start_once(o: Owned, fault: str, target: str, for_s: float | None, already: str, undo: str) -> Active:
    """Start `fault` on `target` unless it is in force there already (`undo` is how to end it)."""
    if o.book.find(fault, target):
        raise ConfigError(f"{target} is already {already}; `harness fault {undo} {target}` ends it")
    active, _ = _start(o, fault, target, {}, for_s)
    return active


def cut(o: Owned, link: str, for_s: float | None = None) -> dict[str, Any]:
    active = _start_once(o, "cut", _link(o, link), for_s, "cut", "restore")
    return _lines(f"cut {link}: new connections refused, open ones closed ({active.id}{_for(for_s)})")


def restore(o: Owned, link: str) -> dict[str, Any]:
    return _end_one(o, "cut", _link(o, link), f"{link} is not cut", f"restored {link}")


def _end_one(o: Owned, fault: str, target: str, none: str, done: str, **params: Any) -> dict[str, Any]:
    found = o.book.find(fault, target, **params)
    if not found:
        raise ConfigError(none)
    o.book.end(found[0])
    return _lines(f"{done} ({found[0].id})")


# ---- processes ---------------------------------------------------------------------------------------

def kill(o: Owned, process: str, for_s: float | None = None) -> dict[str, Any]:
    old = o.stack.process(_process(o, process)).pid
    active = _start_once(o, "kill", process, for_s, "killed", "restart")
    return _lines(f"killed {process} (pid {old}) ({active.id}{_for(for_s)});"
                  f" `harness fault restart {process}` starts it again")


def pause(o: Owned, process: str, for_s: float | None = None) -> dict[str, Any]:
    active = _start_once(o, "pause", _process(o, process), for_s, "paused", "resume")
    return _lines(f"paused {process} (SIGSTOP; pid {o.stack.process(process).pid}) ({active.id}{_for(for_s)})")


def resume(o: Owned, process: str) -> dict[str, Any]:
    return _end_one(o, "pause", _process(o, process), f"{process} is not paused", f"resumed {process}")


def restart(o: Owned, process: str) -> dict[str, Any]:
    """A killed or paused process is healed (a killed one starts again); any other is restarted."""
    _process(o, process)
    held = [a for a in list(o.book.active) if a.target == process and a.fault in ("kill", "pause")]
    lines = [_ended(o, a) for a in held]
    if any(a.fault == "kill" for a in held):
        return _lines(*lines, f"{process} started again: pid {o.stack.process(process).pid}")
    old = o.stack.process(process).pid
    o.book.instant("restart", process, {}, lambda: _restart(o.stack, process))
    return _lines(*lines, f"restarted {process}: pid {old} -> {o.stack.process(process).pid}")


def _ended(o: Owned, active: Active) -> str:
    o.book.end(active)
    return f"ended {active.label()}"


def _restart(stack: LocalStack, name: str) -> None:
    """Stop (SIGTERM, bounded) and start again, waiting until a service process is ready."""
    if name == "postgres" and stack.postgres is not None:
        stack.postgres.restart()
    elif stack.service is not None and name in {p.name for p in stack.service.processes}:
        stack.service.restart(name)
    else:
        stack.process(name).restart()


def start_replica(o: Owned, role: str) -> dict[str, Any]:
    """Another worker of `role` beside the running ones (two outbox workers contending, a queue worker to
    take over a lease), logged as a change with no duration; `harness down` stops it with the rest."""
    if o.stack.service is None:
        raise ConfigError("this stack runs no service")
    service = o.stack.service
    proc = o.book.instant("start_replica", role, {}, lambda: service.add_replica(role))
    return _lines(f"started {proc.name}: pid {proc.process.pid}")


def restart_outbox(o: Owned, timeout: float = 30.0) -> dict[str, Any]:
    """The runbook's "restart outbox worker" (`harness recover restart-outbox`)."""
    workers = [p.name for p in o.stack.service.carrying(OUTBOX_ROLE)] if o.stack.service else []
    for active in [a for a in list(o.book.active) if a.target in workers and a.fault in ("kill", "pause")]:
        o.book.end(active)
    result: RestartResult = o.book.instant("restart", OUTBOX_ROLE, {"by": "harness recover restart-outbox"},
                            lambda: restart_outbox_in_stack(o.stack, timeout))
    return result.to_dict()


# ---- failpoints, database, nginx ---------------------------------------------------------------------

def _require_failpoints(o: Owned) -> None:
    if o.stack.profile.lacks("failpoints"):
        raise ConfigError(f"the target {o.stack.profile.name!r} lacks the capability `failpoints`: nothing to arm")


def failpoint_arm(o: Owned, process: str, name: str, action: str, for_s: float | None = None) -> dict[str, Any]:
    _require_failpoints(o)
    lines = [_ended(o, a) for a in o.book.find("failpoint", _process(o, process), name=name)]
    active, _ = _start(o, "failpoint", process, {"name": name, "action": action}, for_s)
    return _lines(*lines, f"armed {name}={action} in {process} ({active.id}{_for(for_s)})")


def failpoint_disarm(o: Owned, process: str, name: str) -> dict[str, Any]:
    _require_failpoints(o)
    for active in o.book.find("failpoint", _process(o, process), name=name):
        o.book.end(active)
        return _lines(f"disarmed {name} in {process} ({active.id})")
    # armed some other way (`harness up --failpoints`): disarm it all the same, and log the change
    o.book.instant("failpoint", process, {"name": name, "action": None},
                   lambda: set_failpoint(o.stack, process, name, None))
    return _lines(f"disarmed {name} in {process}")


def terminate_sessions(o: Owned, role: str | None = None) -> dict[str, Any]:
    if role is not None and role not in SESSION_ROLES:
        raise ConfigError(f"unknown role {role!r}; roles: {', '.join(SESSION_ROLES)}")
    target = SESSION_ROLES[role] if role else "*"

    def terminate() -> list[int]:
        with open_fault(o.stack, o.history, "terminate_sessions", target, {"role": role}) as pids:
            return list(pids)
    pids = o.book.instant("terminate_sessions", target, {"role": role}, terminate)
    return _lines(f"terminated {len(pids)} session(s) of {role or 'every role'}: pids {pids}")


def lock_outbox(o: Owned, run_id: str, for_s: float | None = None) -> dict[str, Any]:
    active, locked = _start(o, "lock_outbox", run_id, {}, for_s)
    if not locked:
        o.book.end(active)
        raise ConfigError(f"run {run_id} has no run_outbox row to lock (unknown run id?)")
    return _lines(f"locked the run_outbox row of {run_id}: its events wait until the lock ends"
                  f" ({active.id}{_for(for_s)})")


def buffering(o: Owned, on: bool, for_s: float | None = None) -> dict[str, Any]:
    nginx = o.stack.nginx
    if nginx is None:
        raise ConfigError("this stack runs no nginx: start it with `harness up --nginx on`")
    lines = [_ended(o, a) for a in o.book.find("buffering", "nginx")]  # back to the mode it started with
    if (nginx.config.mode is NginxMode.BUFFERED) == on:
        return _lines(*lines, f"nginx buffering is {'on' if on else 'off'}")
    active, _ = _start(o, "buffering", "nginx", {"on": on}, for_s)
    return _lines(*lines, f"nginx buffering {'on (its defaults)' if on else 'off (SSE-ready)'}, reloaded"
                          f" ({active.id}{_for(for_s)}); open streams keep the old mode until they reconnect")


def clear(o: Owned) -> dict[str, Any]:
    return _lines(*(o.book.end_all() or ["no active fault"]))


ACTIONS: dict[str, Callable[..., dict[str, Any]]] = {
    "list": list_state, "add": add, "remove": remove, "clear": clear, "cut": cut, "restore": restore,
    "kill": kill, "pause": pause, "resume": resume, "restart": restart, "start_replica": start_replica,
    "restart_outbox": restart_outbox,
    "failpoint_arm": failpoint_arm, "failpoint_disarm": failpoint_disarm,
    "terminate_sessions": terminate_sessions, "lock_outbox": lock_outbox, "buffering": buffering,
}
