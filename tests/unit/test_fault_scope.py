"""fault_scope: a fault window excuses only effects on the paths it acts on."""

from __future__ import annotations

import pytest

from harness.checks.fault_scope import faults_on, paths_of
from harness.history import FaultWindow


def _fault(target: str, name: str = "latency") -> FaultWindow:
    return FaultWindow(name, target, 0.0, 1.0, 0.0, 1.0, {})


@pytest.mark.parametrize(("name", "target", "paths"), [
    ("reset_peer", "sse", {"stream", "delivery"}),
    ("latency", "pg_api", {"delivery", "commit"}),
    ("latency", "pg_outbox", {"publish", "delivery"}),
    ("pause", "api-0", {"stream", "delivery"}),
    ("kill", "outbox-worker-0", {"publish", "delivery"}),
    ("kill", "postgres", {"publish", "delivery", "commit"}),
    ("terminate_backends", "*", {"publish", "delivery"}),
    ("lock_outbox", "run_outbox", {"publish", "delivery"}),
    ("pause", "all-0", {"stream", "publish", "delivery"}),
    ("pause", "queue-worker-0", set()),
    ("latency", "pg_queue", {"commit"}),  # a slowed append commits long after its ts
])
def test_paths_of_each_kind_of_fault(name: str, target: str, paths: set[str]) -> None:
    assert paths_of(_fault(target, name)) == paths


def test_faults_on_keeps_only_the_windows_on_that_path() -> None:
    worker, link, outbox = _fault("queue-worker-0"), _fault("sse"), _fault("outbox-worker-0")
    faults = [worker, link, outbox]
    assert faults_on(faults, "stream") == [link]
    assert faults_on(faults, "publish") == [outbox]
    assert faults_on(faults, "delivery") == [link, outbox]
