"""The harness's observer: reads the database directly (never through a proxy) and the service's logs.
The only place where checks meet I/O: `take_snapshot` builds the plain-data `Snapshot` the checkers
judge; `wait_for_outbox` waits for the bound of invariant 6; `run_of` / `job_of` are what a scenario
watches while its faults are on."""
from __future__ import annotations

from harness.observer.convergence import wait_for_outbox, wait_for_outbox_async
from harness.observer.rows import JobRow, RunRow, job_of, run_of
from harness.observer.snapshot import GaugeProbe, gauge_probe, snapshot_of, take_snapshot

__all__ = ["GaugeProbe", "JobRow", "RunRow", "gauge_probe", "job_of", "run_of", "snapshot_of", "take_snapshot", "wait_for_outbox",
           "wait_for_outbox_async"]
