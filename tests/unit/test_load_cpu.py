"""The arithmetic of `harness load`'s per-process CPU (harness/load/process_cpu.py) and of its steady
figures (harness/load/series.py steady_rates), on plain data."""

from __future__ import annotations

import os
import time

from harness.load.process_cpu import (Stat, cpu_summary, interval_ticks, machine_ticks, members, parse_stat,
                                      percent_of_core, sampling)
from harness.load.series import steady_rates


def test_a_stat_line_gives_parents_group_and_user_plus_system_ticks() -> None:
    # comm with a space and a ')' inside; fields 14 and 15 (utime, stime) are 120 and 30
    line = "4242 (postgres: a) b) S 4200 4200 4200 0 -1 4194560 500 0 0 0 120 30 7 9 20 0 1 0 5555 0 0"
    assert parse_stat(4242, line) == Stat(pid=4242, ppid=4200, pgrp=4200, ticks=150)
    assert parse_stat(4243, "4243 (x) Z 1 1 1 0 -1 0 0 0 0 0 5 5 0 0 20 0 1 0 9 0 0") is None


def test_the_real_stat_of_this_process_parses() -> None:
    with open(f"/proc/{os.getpid()}/stat") as f:
        me = parse_stat(os.getpid(), f.read())
    assert me is not None and me.ppid == os.getppid() and me.pgrp == os.getpgrp() and me.ticks >= 0


def test_machine_ticks_leave_out_idle_and_iowait() -> None:
    assert machine_ticks("cpu  100 5 50 1000 40 3 2 1 0 0\ncpu0 1 2 3 4 5 6 7 8 0 0\n") == 161


def test_a_process_sums_its_descendants_and_locust_splits_into_its_workers() -> None:
    # postmaster, 2 backends (each its own group leader, as PostgreSQL makes them) and a child of one
    stats = [Stat(10, 1, 10, 100), Stat(11, 10, 11, 40), Stat(12, 10, 12, 2), Stat(13, 12, 12, 1),
             Stat(20, 1, 20, 300),  # api
             Stat(30, 5, 5, 7), Stat(31, 30, 5, 50), Stat(32, 30, 5, 60),  # Locust (harness's group), 2 workers
             Stat(99, 1, 99, 1000)]  # someone else's
    got = members(stats, {"postgres": 10, "api-0": 20}, locust_pid=30)
    assert got == {"postgres": {10: 100, 11: 40, 12: 2, 13: 1}, "api-0": {20: 300}, "locust": {30: 7},
                   "locust-worker-1": {31: 50}, "locust-worker-2": {32: 60}}
    assert "locust" not in members(stats, {"api-0": 20}, locust_pid=None)
    assert members(stats, {"gone": 77}, locust_pid=None) == {"gone": {}}


def test_an_interval_counts_increases_whole_new_processes_and_nothing_for_gone_ones() -> None:
    before = {10: 100, 11: 40, 12: 2}
    now = {10: 130, 11: 45, 13: 8}  # 12 exited, 13 is a new backend
    assert interval_ticks(before, now) == 30 + 5 + 8
    assert interval_ticks({1: 50}, {1: 50}) == 0
    assert interval_ticks({1: 50}, {1: 40}) == 0  # a reused pid never counts negative


def test_percent_of_one_core() -> None:
    assert percent_of_core(150, 2.0, hz=100) == 75.0  # 1.5 s of CPU in 2 s
    assert percent_of_core(200, 1.0, hz=100) == 200.0  # two cores' worth (a group of processes)
    assert percent_of_core(10, 0.0, hz=100) == 0.0


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
    # This process (pytest's) and its children, busy for about 1.5 s: at least one sample shows real work
    with sampling(lambda: {"me": os.getpid()}, locust_pid=None, t0=time.time()) as series:
        end = os.times().user + 1.5
        while os.times().user < end:
            pass
    mine, machine = [pct for _, pct in series["me"]], [pct for _, pct in series["machine"]]
    assert mine and max(mine) > 30, series
    assert machine and max(machine) >= max(mine) - 5, series
    assert 0 < series["me"][0][0] < 2.5, series  # seconds from t0


def test_steady_rates_are_means_over_the_window() -> None:
    seconds = [{"t": t, "appended": t, "published": t, "delivered": 2 * t, "open_streams": 4} for t in range(10)]
    assert steady_rates(seconds, 5, 10) == {"appended_per_s": 7.0, "published_per_s": 7.0, "delivered_per_s": 14.0,
                                            "open_streams": 4.0}
    assert steady_rates(seconds, 20, 30)["appended_per_s"] is None
