"""Network faults on one link of the stack through toxiproxy: a toxic for the block, or the link down.

Links are logical names (`sse`, `pg_api`, `pg_outbox`, `pg_queue`, or `pg` on a target doing every role
in one process); every fault works on any link of the stack and, for toxics, either direction. Each
records its window in the history and is undone on exit.
"""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from harness.errors import ConfigError
from harness.history import History
from harness.nemesis.toxics import Direction, _ToxicSpec, check_link
from harness.stack import LocalStack, Toxic, ToxiproxyApi

__all__ = ["down", "link_toxic"]


def _api(stack: LocalStack) -> ToxiproxyApi:
    assert stack.api is not None, "the stack is not started"
    return stack.api


def _on_stack(stack: LocalStack, link: str) -> str:
    """`link`, if this stack has it: an `all` target's stack has `pg` and no role links, one with separate
    roles the role links and no `pg`; a link the stack lacks is an error, never a fault that hits nothing."""
    if check_link(link) not in stack.links:
        raise ConfigError(f"link {link!r} is not on this stack (target {stack.profile.name}); its links:"
                          f" {', '.join(stack.links)}")
    return link


@contextmanager
def link_toxic(stack: LocalStack, history: History, link: str, spec: _ToxicSpec,
               stream: Direction = "downstream", name: str = "") -> Iterator[Toxic]:
    """A typed toxic (`Latency(latency=200)`, `LimitData(bytes=300)`, ...) on `link` for the block.
    `name` lets two toxics of one type overlap on one link and stream (toxiproxy's default name is
    `<type>_<stream>`)."""
    with _applied(stack, history, _on_stack(stack, link), spec.to_toxic(stream, name)) as added:
        yield added


@contextmanager
def _applied(stack: LocalStack, history: History, link: str, spec: Toxic) -> Iterator[Toxic]:
    api, proxy = _api(stack), stack.proxy_name(link)
    added = api.add_toxic(proxy, spec)
    try:
        with history.fault(f"toxic:{spec.type}", link, {"stream": spec.stream, **spec.attributes}):
            yield added
    finally:
        if added.name in {t.name for t in api.list_toxics(proxy)}:  # a heal may have removed it
            api.remove_toxic(proxy, added.name)


@contextmanager
def down(stack: LocalStack, history: History, link: str) -> Iterator[None]:
    """The link disabled for the block: new connections are refused and open ones closed."""
    api, proxy = _api(stack), stack.proxy_name(_on_stack(stack, link))
    api.disable(proxy)
    try:
        with history.fault("down", link):
            yield
    finally:
        api.enable(proxy)
