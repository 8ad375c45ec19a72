"""What saturates during a load: the CPU of each process of the stack and of the load generator, once
a second, as % of one core (read from /proc by harness/bench/cpu.py).

A stack process counts with all its descendants (PostgreSQL's postmaster with its backends, nginx with
its workers). Locust counts as its own process (the local runner, or the master of `--processes K`) and
each child, a forked worker, with its descendants. A descendant that exits takes its CPU out of the sum:
that interval counts as 0 rather than negative (the service's and the pool's connections live as long
as the load). The whole machine from /proc/stat: what other work on a shared machine took shows as
machine minus ours.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from harness.bench.cpu import child_pids, machine_ticks, pid_cpu_seconds, tree_cpu_seconds

__all__ = ["cpu_summary", "interval_percents", "sampling"]

INTERVAL_S = 1.0
MACHINE = "machine"  # every process of the machine, ours or not
_HZ = os.sysconf("SC_CLK_TCK")


def interval_percents(before: Mapping[str, float], after: Mapping[str, float], wall_s: float) -> dict[str, float]:
    """% of one core per name between two readings of CPU seconds; a name new in `after` has no interval
    yet, and a sum that fell (a descendant exited) counts as 0."""
    if wall_s <= 0:
        return {}
    return {name: 100.0 * max(0.0, cpu - before[name]) / wall_s for name, cpu in after.items() if name in before}


def cpu_summary(series: Mapping[str, Sequence[tuple[float, float]]], cores: int, start_s: float = float("-inf"),
                end_s: float = float("inf")) -> dict[str, Any]:
    """Per name, mean and max % of one core over its samples (t, %) with start_s <= t <= end_s; the
    busiest of ours by mean."""
    figures = {}
    for name, samples in series.items():
        values = [v for t, v in samples if start_s <= t <= end_s]
        if values:
            figures[name] = {"mean": round(sum(values) / len(values), 1), "max": round(max(values), 1),
                             "samples": len(values)}
    ours = {name: f for name, f in figures.items() if name != MACHINE}
    busiest = max(ours, key=lambda name: ours[name]["mean"], default=None)
    return {"unit": "% of one core", "interval_s": INTERVAL_S, "cores": cores,
            "processes": dict(sorted(ours.items(), key=lambda kv: -kv[1]["mean"])),
            "machine": figures.get(MACHINE), "busiest": busiest}


def _reading(leaders: Mapping[str, int], locust_pid: int | None) -> dict[str, float]:
    """CPU seconds so far of each name, and the machine's busy seconds in one-core units."""
    roots = dict(leaders)
    if locust_pid is not None:
        roots |= {f"locust-worker-{i}": child for i, child in enumerate(child_pids(locust_pid), 1)}
    out = tree_cpu_seconds(roots)
    if locust_pid is not None:
        out["locust"] = pid_cpu_seconds(locust_pid)
    out[MACHINE] = machine_ticks()[0] / _HZ  # busy seconds of all cores together
    return out


@contextmanager
def sampling(leaders: Callable[[], Mapping[str, int]], locust_pid: int | None,
             t0: float) -> Iterator[dict[str, list[tuple[float, float]]]]:
    """Samples in a thread while the block runs; yields the series (name -> (seconds from the wall
    clock's `t0` at the interval's end, % of one core)), complete once the block has ended. `leaders`
    is asked each time: a restarted process has a new pid."""
    series: dict[str, list[tuple[float, float]]] = {}
    done = threading.Event()

    def loop() -> None:
        before, at = _reading(leaders(), locust_pid), time.monotonic()
        while not done.wait(INTERVAL_S):
            after, now = _reading(leaders(), locust_pid), time.monotonic()
            for name, pct in interval_percents(before, after, now - at).items():
                series.setdefault(name, []).append((round(time.time() - t0, 2), pct))
            before, at = after, now

    thread = threading.Thread(target=loop, name="process-cpu", daemon=True)
    thread.start()
    try:
        yield series
    finally:
        done.set()
        thread.join()
