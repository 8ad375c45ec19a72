"""Failpoints inside the service, armed through its loopback admin endpoint."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from harness.errors import StackError, WaitTimeout
from harness.history import History
from harness.stack import LocalStack
from harness.stack.waiting import wait_until


def set_failpoint(stack: LocalStack, process: str, name: str, action: str | None) -> None:
    """Arm `name` with `action` (`crash`, `1*crash`, `sleep(200)`, `error`, `hang`) in `process`, or
    disarm it with None. `process` is an API replica (`api-0`) or a worker (`outbox-worker-0`)."""
    url = f"{_admin_base(stack, process).rstrip('/')}/admin/failpoints/{name}"
    headers = {"Authorization": f"Bearer {stack.info.admin_token}"}
    try:
        if action is None:
            resp = httpx.delete(url, headers=headers, timeout=5)
        else:
            resp = httpx.put(url, json={"action": action}, headers=headers, timeout=5)
    except httpx.HTTPError as exc:
        raise StackError(f"could not reach {url}: {exc}") from exc
    if resp.status_code >= 400:
        raise StackError(f"{url} answered {resp.status_code}: {resp.text[:200]}")


def _admin_base(stack: LocalStack, process: str) -> str:
    """Workers serve admin on their ops port; API replicas on their own port."""
    info = stack.info
    apis = {f"api-{i}": url for i, url in enumerate(info.api_direct_urls)}
    base = info.admin_urls.get(process) or apis.get(process)
    if base is None:
        raise StackError(f"no admin endpoint for process {process!r}; known: {sorted({**info.admin_urls, **apis})}")
    return base


@contextmanager
def armed_failpoint(stack: LocalStack, history: History, process: str, name: str, action: str) -> Iterator[None]:
    """The failpoint armed for the block and disarmed on exit (when the process still runs)."""
    set_failpoint(stack, process, name, action)
    with history.fault(f"failpoint:{name}", process, {"action": action}):
        try:
            yield
        finally:
            _disarm(stack, process, name)


def _disarm(stack: LocalStack, process: str, name: str) -> None:
    """A process that crashed (say, on its own `crash` failpoint) has nothing left to disarm, also when
    it dies between the check and the request: a dying process closes its listener before it exits, so a
    refused disarm waits a moment for the exit before it counts as an error."""
    proc = stack.process(process)
    try:
        if proc.running:
            set_failpoint(stack, process, name, None)
    except StackError as refused:
        try:
            wait_until(lambda: not proc.running, 5, f"{process} to finish exiting")
        except WaitTimeout:
            raise refused from None
