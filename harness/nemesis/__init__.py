"""Nemesis: faults injected into a running stack. Each fault is a context manager that records its
window into the history and always heals on exit; a nemesis never asserts."""
from __future__ import annotations

from harness.nemesis.failpoints import armed_failpoint, set_failpoint
from harness.nemesis.link_faults import toxic
from harness.nemesis.process_faults import killed, paused

__all__ = ["armed_failpoint", "killed", "paused", "set_failpoint", "toxic"]
