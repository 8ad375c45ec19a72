"""The arithmetic of `harness load`'s per-process CPU (harness/load/process_cpu.py) and of its steady
figures (harness/load/series.py steady_rates), on plain data."""

from __future__ import annotations

import os
import subprocess
import time

from harness.load.process_cpu import cpu_summary, interval_percents, sampling
from harness.load.series import steady_rates


def test_an_interval_is_the_cpu_seconds_used_over_the_wall_time() -> None:
    before = {"postgres": 10.0, "api-0": 3.0, "machine": 100.0}
    after = {"postgres": 10.5, "api-0": 3.9, "machine": 101.8, "locust-worker-1": 0.2}
    got = {name: round(pct, 6) for name, pct in interval_percents(before, after, 2.0).items()}
    assert got == {"postgres": 25.0, "api-0": 45.0, "machine": 90.0}  # a new name waits for its next interval
    assert interval_percents({"postgres": 10.0}, {"postgres": 9.0}, 1.0) == {"postgres": 0.0}  # a backend exited
    assert interval_percents({"a": 1.0}, {"a": 3.0}, 1.0) == {"a": 200.0}  # a process tree over two cores
    assert interval_percents({"a": 1.0}, {"a": 2.0}, 0.0) == {}


def test_the_summary_names_the_busiest_of_ours_not_the_machine_over_a_window() -> None:
    series = {"api-0": [(1.0, 90.0), (2.0, 100.0), (3.0, 95.0)], "postgres": [(1.0, 40.0), (3.0, 60.0)],
              "locust": [], "machine": [(1.0, 180.0), (2.0, 190.0)]}
    got = cpu_summary(series, cores=2)
    assert got["busiest"] == "api-0"
    assert list(got["processes"]) == ["api-0", "postgres"]  # by mean, and none without samples
    assert got["processes"]["api-0"] == {"mean": 95.0, "max": 100.0, "samples": 3}
    assert got["machine"] == {"mean": 185.0, "max": 190.0, "samples": 2}
    late = cpu_summary(series, cores=2, start_s=2.5, end_s=3.0)  # a window keeps its samples only
    assert late["processes"]["postgres"]["mean"] == 60.0 and late["processes"]["api-0"]["samples"] == 1
    assert late["machine"] is None
    assert cpu_summary({}, cores=2)["busiest"] is None


def test_sampling_sees_a_busy_process_of_this_machine() -> None:
    # This process (pytest's) and its children, busy for about 1.5 s: at least one sample shows real work;
    # as Locust, its (idle) child is a worker of its own
    t0 = time.time()
    with subprocess.Popen(["sleep", "5"]) as child:
        with sampling(lambda: {"me": os.getpid()}, locust_pid=os.getpid(), t0=t0) as series:
            end = os.times().user + 1.5
            while os.times().user < end:
                pass
        child.kill()
    mine, machine = [pct for _, pct in series["me"]], [pct for _, pct in series["machine"]]
    assert mine and max(mine) > 30, series
    assert machine and max(machine) >= max(mine) - 5, series
    assert 0 < series["me"][0][0] <= time.time() - t0, series  # seconds from t0, not a clock's epoch
    assert series["locust"] and max(p for _, p in series["locust-worker-1"]) < 5, series


def test_steady_rates_are_means_over_the_window() -> None:
    seconds = [{"t": t, "appended": t, "published": t, "delivered": 2 * t, "open_streams": 4} for t in range(10)]
    assert steady_rates(seconds, 5, 10) == {"appended_per_s": 7.0, "published_per_s": 7.0, "delivered_per_s": 14.0,
                                            "open_streams": 4.0}
    assert steady_rates(seconds, 20, 30)["appended_per_s"] is None
