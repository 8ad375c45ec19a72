"""What saturates during a load: the CPU of each process of the stack and of the load generator, from
`/proc/<pid>/stat` (utime + stime) once a second, as % of one core.

A stack process is counted with all its descendants (PostgreSQL's postmaster with its backends, which
leave its process group, nginx with its workers). Locust is its own process (the local runner, or the
master of `--processes K`) and each of its children, a forked worker. A process
that starts between two samples counts all it used; one that exits loses its last partial interval
(the service's and the pool's connections live as long as the load). `/proc/stat`'s first line gives
the whole machine: what other work on a shared machine took shows as machine minus ours.
"""
from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["Stat", "cpu_summary", "interval_ticks", "machine_ticks", "members", "parse_stat", "percent_of_core",
           "sampling"]

INTERVAL_S = 1.0
MACHINE = "machine"  # the series of /proc/stat: every process of the machine, ours or not
_HZ = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Stat:
    pid: int
    ppid: int
    pgrp: int
    ticks: int  # utime + stime, in clock ticks


def parse_stat(pid: int, text: str) -> Stat | None:
    """One `/proc/<pid>/stat` line; None for a zombie (it holds no CPU any more)."""
    # The command name (field 2) may hold spaces and parentheses: split after its last ')'.
    fields = text.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return Stat(pid, int(fields[1]), int(fields[2]), int(fields[11]) + int(fields[12]))


def machine_ticks(text: str) -> int:
    """Busy ticks of all cores from `/proc/stat`'s `cpu` line: all but idle and iowait."""
    values = [int(v) for v in text.split("\n", 1)[0].split()[1:]]
    return sum(values[:8]) - values[3] - values[4]  # user nice system idle iowait irq softirq steal


def members(stats: Sequence[Stat], leaders: Mapping[str, int], locust_pid: int | None) -> dict[str, dict[int, int]]:
    """Each sampled name's processes and their ticks: a stack process with all its descendants, Locust
    and each of its workers."""
    ticks = {s.pid: s.ticks for s in stats}
    children: dict[int, list[int]] = {}
    for s in stats:
        children.setdefault(s.ppid, []).append(s.pid)

    def tree(root: int) -> dict[int, int]:
        found, todo = {}, [root] if root in ticks else []
        while todo:
            pid = todo.pop()
            found[pid] = ticks[pid]
            todo += children.get(pid, [])
        return found

    out = {name: tree(pid) for name, pid in leaders.items()}
    if locust_pid is not None:
        out["locust"] = {locust_pid: ticks[locust_pid]} if locust_pid in ticks else {}
        for i, pid in enumerate(sorted(children.get(locust_pid, [])), 1):
            out[f"locust-worker-{i}"] = tree(pid)
    return out


def interval_ticks(before: Mapping[int, int], now: Mapping[int, int]) -> int:
    """Ticks used between two samples: a pid in both adds its increase, a pid new since `before` all it
    used (it started within the interval), a pid gone adds nothing."""
    return sum(max(0, ticks - before.get(pid, 0)) for pid, ticks in now.items())


def percent_of_core(ticks: int, seconds: float, hz: int = _HZ) -> float:
    return 100.0 * ticks / hz / seconds if seconds > 0 else 0.0


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


def _read_stats() -> list[Stat]:
    stats = []
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                stat = parse_stat(int(entry.name), Path(entry.path, "stat").read_text())
            except (OSError, IndexError, ValueError):
                continue  # exited while we looked
            if stat is not None:
                stats.append(stat)
    return stats


def _sample(leaders: Mapping[str, int], locust_pid: int | None) -> dict[str, dict[int, int]]:
    now = members(_read_stats(), leaders, locust_pid)
    now[MACHINE] = {0: machine_ticks(Path("/proc/stat").read_text())}
    return now


@contextmanager
def sampling(leaders: Callable[[], Mapping[str, int]], locust_pid: int | None,
             t0: float) -> Iterator[dict[str, list[tuple[float, float]]]]:
    """Samples in a thread while the block runs; yields the series (name -> (seconds from the wall
    clock's `t0` at the interval's end, % of one core)), complete once the block has ended. `leaders`
    is asked each time: a restarted process has a new pid."""
    series: dict[str, list[tuple[float, float]]] = {}
    done = threading.Event()

    def loop() -> None:
        before, at = _sample(leaders(), locust_pid), time.monotonic()
        while not done.wait(INTERVAL_S):
            now, t = _sample(leaders(), locust_pid), time.monotonic()
            for name, ticks in now.items():
                if name in before:
                    pct = percent_of_core(interval_ticks(before[name], ticks), t - at)
                    series.setdefault(name, []).append((round(time.time() - t0, 2), pct))
            before, at = now, t

    thread = threading.Thread(target=loop, name="process-cpu", daemon=True)
    thread.start()
    try:
        yield series
    finally:
        done.set()
        thread.join()
