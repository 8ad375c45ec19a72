"""CPU time per component over a measurement window, from /proc (Linux).

A component's CPU is the sum over its process tree (the process and its descendants): PostgreSQL's
backends count as PostgreSQL. By tree, not by process group: each backend calls setsid().
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = ["CpuMeter", "CpuShare", "child_pids", "machine_ticks"]

_TICK = os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: str) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    return text[text.rindex(")") + 2:].split()  # fields from `state` on; the name may hold spaces


def _cpu_s(fields: list[str]) -> float:
    return (int(fields[11]) + int(fields[12])) / _TICK  # utime, stime


def _all_stats() -> dict[int, list[str]]:
    stats = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            fields = _stat_fields(entry)
            if fields is not None:
                stats[int(entry)] = fields
    return stats


def _children(stats: dict[int, list[str]]) -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for pid, fields in stats.items():
        children.setdefault(int(fields[1]), []).append(pid)
    return children


def child_pids(pid: int) -> list[int]:
    """The direct children of `pid` (e.g. the workers Locust's `--processes` forks)."""
    return sorted(_children(_all_stats()).get(pid, []))


def tree_cpu_seconds(roots: dict[str, int]) -> dict[str, float]:
    """name -> CPU seconds of the process `roots[name]` and all its descendants (one /proc scan)."""
    stats = _all_stats()
    children = _children(stats)
    out = {}
    for name, root in roots.items():
        total, todo, seen = 0.0, [root], set()
        while todo:
            pid = todo.pop()
            if pid in seen or pid not in stats:
                continue
            seen.add(pid)
            total += _cpu_s(stats[pid])
            todo += children.get(pid, [])
        out[name] = total
    return out


def pid_cpu_seconds(pid: int) -> float:
    fields = _stat_fields(str(pid))
    return _cpu_s(fields) if fields is not None else 0.0


def machine_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of all CPUs since boot."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = parts[3] + (parts[4] if len(parts) > 4 else 0)  # idle + iowait
    total = sum(parts[:8])  # guest time is already in user
    return total - idle, total


@dataclass(frozen=True)
class CpuShare:
    name: str
    percent: float  # of one core, over the window


class CpuMeter:
    """`start()` then `stop()`: each component's CPU % of one core and the machine's busy %."""

    def __init__(self, groups: dict[str, int], pids: dict[str, int]) -> None:
        self.groups = groups  # name -> pid of a stack process, counted with its descendants
        self.pids = pids  # name -> pid (a single process)
        self._t0 = 0.0
        self._before: dict[str, float] = {}
        self._machine0 = (0, 0)
        self.shares: list[CpuShare] = []
        self.machine_busy_percent = float("nan")
        self.wall_s = 0.0

    def _read(self) -> dict[str, float]:
        values = tree_cpu_seconds(self.groups)
        values |= {name: pid_cpu_seconds(pid) for name, pid in self.pids.items()}
        return values

    def start(self) -> None:
        self._before = self._read()
        self._machine0 = machine_ticks()
        self._t0 = time.monotonic()

    def stop(self) -> None:
        self.wall_s = time.monotonic() - self._t0
        after = self._read()
        busy1, total1 = machine_ticks()
        busy0, total0 = self._machine0
        self.machine_busy_percent = 100.0 * (busy1 - busy0) / max(1, total1 - total0)
        wall = max(self.wall_s, 1e-9)
        self.shares = sorted((CpuShare(name, 100.0 * max(0.0, after.get(name, 0.0) - before) / wall)
                              for name, before in self._before.items()), key=lambda s: -s.percent)

    def to_dict(self) -> dict[str, object]:
        return {"wall_s": self.wall_s, "machine_busy_percent": self.machine_busy_percent,
                "shares": {s.name: s.percent for s in self.shares}}
