"""fault_scope: a fault window excuses only effects on the paths it acts on."""

from __future__ import annotations

import pytest

from harness.checks.fault_scope import faults_on, paths_of
from harness.history import FaultWindow


def _fault(target: str, name: str = "latency") -> FaultWindow:
    return FaultWindow(name, target, 0.0, 1.0, 0.0, 1.0, {})


@pytest.mark.parametrize(("name", "target", "paths"), [
    ("reset_peer", "sse", {"stream", "delivery"}),
    ("latency", "pg_api", {"delivery", "commit", "append"}),
    ("latency", "pg_outbox", {"publish", "delivery"}),
    ("pause", "api-0", {"stream", "delivery", "append"}),
    ("kill", "outbox-worker-0", {"publish", "delivery"}),
    ("kill", "postgres", {"publish", "delivery", "commit", "append"}),
    ("terminate_backends", "*", {"publish", "delivery", "append"}),
    ("lock_outbox", "*", {"publish", "delivery"}),  # every outbox row locked: appends go on
    ("lock_outbox", "run_outbox", {"publish", "delivery"}),
    ("pause", "all-0", {"stream", "publish", "delivery", "append"}),
    ("pause", "queue-worker-0", {"append"}),
    ("latency", "pg_queue", {"commit", "append"}),  # a slowed append commits long after its ts
])
def test_paths_of_each_kind_of_fault(name: str, target: str, paths: set[str]) -> None:
    assert paths_of(_fault(target, name)) == paths


def test_faults_on_keeps_only_the_windows_on_that_path() -> None:
    worker, link, outbox = _fault("queue-worker-0"), _fault("sse"), _fault("outbox-worker-0")
    faults = [worker, link, outbox]
    assert faults_on(faults, "stream") == [link]
    assert faults_on(faults, "publish") == [outbox]
    assert faults_on(faults, "delivery") == [link, outbox]


def test_the_append_path_is_the_appenders_and_their_links() -> None:
    worker, api, outbox, cut = _fault("queue-worker-0"), _fault("api-1"), _fault("outbox-worker-0"), _fault("sse")
    assert faults_on([worker, api, outbox, cut], "append") == [worker, api]
