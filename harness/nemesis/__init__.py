"""Nemesis: faults injected into a running stack. Each fault is a context manager that records its
window into the history and always heals on exit; a nemesis never asserts. `run_schedule` runs faults
given as plain data on an explicit clock and always ends with `stack.heal()`."""
from __future__ import annotations

from harness.nemesis.db_faults import locked_outbox, removed_event, terminate_backends, terminated_backends
from harness.nemesis.failpoints import armed_failpoint, set_failpoint
from harness.nemesis.fault_kinds import FAULTS, open_fault
from harness.nemesis.link_faults import down, link_toxic
from harness.nemesis.process_faults import killed, paused
from harness.nemesis.schedule import Entry, Schedule, parse_schedule, run_schedule
from harness.nemesis.toxics import (
    LINKS,
    TOXIC_TYPES,
    Bandwidth,
    Latency,
    LimitData,
    ResetPeer,
    Slicer,
    SlowClose,
    Timeout,
    toxic_from_params,
)

__all__ = [
    "FAULTS", "LINKS", "TOXIC_TYPES", "Bandwidth", "Entry", "Latency", "LimitData", "ResetPeer", "Schedule",
    "Slicer", "SlowClose", "Timeout", "armed_failpoint", "down", "killed", "link_toxic", "locked_outbox",
    "open_fault", "parse_schedule", "paused", "removed_event", "run_schedule", "set_failpoint",
    "terminate_backends", "terminated_backends", "toxic_from_params",
]
