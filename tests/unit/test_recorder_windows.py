"""The recorder's fault windows from the fault log: which faults count for a recording's span."""

from __future__ import annotations

from typing import Any

from harness.control.fault_log import iso
from harness.control.recorder import fault_windows


def line(at: float, op: str, fault_id: str, fault: str = "pause", target: str = "outbox-worker-0") -> dict[str, Any]:
    return {"at": iso(at), "op": op, "id": fault_id, "fault": fault, "target": target, "params": {"x": 1},
            "until": None}


def test_windows_are_the_faults_active_during_the_recording() -> None:
    began, ended = 1000.0, 1010.0
    log = [line(990, "start", "f1"), line(995, "end", "f1"),  # over before the recording: left out
           line(998, "start", "f2", "cut", "sse"), line(1002, "end", "f2", "cut", "sse"),  # active when it began
           line(1004, "start", "f3"),  # never healed
           line(1005, "start", "f4"), line(1006, "end", "f4"),
           line(1012, "start", "f5")]  # after the recording: left out
    windows = {w.params["id"]: w for w in fault_windows(log, began, ended)}
    assert sorted(windows) == ["f2", "f3", "f4"]
    cut = windows["f2"]
    assert (cut.name, cut.target, cut.start_wall, cut.end_wall, cut.params["x"]) == ("cut", "sse", 998, 1002, 1)
    assert cut.end is not None and abs((cut.end - cut.start) - 4.0) < 1e-3  # the monotonic span is the wall one
    assert windows["f3"].end is None and windows["f3"].end_wall is None
