"""The CLI's end of the control channel: find the running stack's owner in stack.json and ask it."""

from __future__ import annotations

from typing import Any

import httpx

from harness.control.server import REQUEST_TIMEOUT_S
from harness.errors import ConfigError, StackError
from harness.stack.supervisor import StateFiles, running_info

__all__ = ["ask_owner"]


def ask_owner(action: str, args: dict[str, Any] | None = None, files: StateFiles | None = None) -> Any:
    """Run `action` in the stack's owner and return its result. A refused request raises ConfigError
    (bad names: exit 2); a failed one StackError; no stack NoStackRunning."""
    files = files or StateFiles.default()
    info = running_info(files, "`harness up --detach` first")
    if not info.control_url or not info.control_token:
        raise StackError(f"the stack's owner (pid {info.owner_pid}) has no control channel in {files.stack_json}:"
                         " restart it (`harness down`, then `harness up --detach`)")
    try:
        resp = httpx.post(f"{info.control_url}/{action}", json=args or {}, timeout=REQUEST_TIMEOUT_S + 30,
                          headers={"Authorization": f"Bearer {info.control_token}"})
        data = resp.json()
    except (httpx.HTTPError, ValueError) as exc:
        raise StackError(f"the stack's owner at {info.control_url} did not answer: {exc}") from exc
    if resp.status_code == 200:
        return data["result"]
    error = data.get("error", resp.text)
    raise ConfigError(error) if resp.status_code == 400 else StackError(f"the stack's owner: {error}")
