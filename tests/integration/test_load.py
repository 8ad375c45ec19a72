"""`harness load` end to end on a stack it starts: Locust as a subprocess (scenarios/locustfile.py),
faults on the load's clock, the gate's three exits and `--processes 2`. Short loads with small numbers;
long runs stay out of `make test`. The loads that must pass or fail on lag gate on `warning` (lag must not
be critical): on 2 shared cores a busy neighbour can put a baseline p99 over 100 ms, never over 500 ms
(the `normal` gate's arithmetic is unit-tested, tests/unit/test_load_gate.py)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cli_helpers import run_cli

pytestmark = pytest.mark.stack


def load(capsys: pytest.CaptureFixture[str], reports: Path, *args: str) -> tuple[int, dict[str, Any], Path, str]:
    code, out, err = run_cli(capsys, "load", "--users", "6", "--spawn-rate", "6", "--out", str(reports),
                             "--steps", "30", *args)
    folders = sorted(reports.glob("*/load"))
    assert folders, (code, out, err)
    return code, json.loads((folders[-1] / "summary.json").read_text()), folders[-1], out + err


def test_a_fault_in_the_middle_shows_in_the_phases_and_the_gate_passes(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, summary, folder, out = load(capsys, tmp_path, "--duration", "15s", "--gate", "warning",
                                 "--fault", "sse:latency=60@5s-9s")
    assert code == 0, out
    assert summary["verdict"] == "pass" and summary["invariants"]["valid"] is True, summary
    phases = {row["phase"]: row for row in summary["phases"]}
    assert list(phases) == ["baseline", "fault", "recovery"]
    # 60 ms more on every frame through the sse link: the fault phase's median shows it, still in class
    assert phases["fault"]["p50"] > phases["baseline"]["p50"] + 40, phases
    assert summary["classes"]["critical"] == 0
    assert summary["faults"][0]["entered_s"] is not None and summary["faults"][0]["exited_s"] is not None
    for name in [*summary["plots"].values(), "index.html", "locust.html", "locust_stats.csv", "locust.json",
                 "checks.json", "history.jsonl"]:
        assert (folder / name).stat().st_size > 0, name
    assert "fault" in (folder / "index.html").read_text()


def test_latency_on_the_outbox_link_pushes_lag_into_critical_and_fails_the_gate(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, summary, _, out = load(capsys, tmp_path, "--duration", "12s", "--gate", "warning",
                                 "--fault", "pg_outbox:latency=800@4s-9s")
    assert code == 1, out
    assert summary["verdict"] == "fail" and any("critical" in r for r in summary["reasons"]), summary
    phases = {row["phase"]: row for row in summary["phases"]}
    assert phases["fault"]["p99_class"] == "critical" and phases["baseline"]["p99_class"] != "critical", phases
    assert summary["invariants"]["valid"] is True  # lag alone failed the gate


def test_a_saturated_generator_is_inconclusive(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # Honest saturation is minutes of load on 2 shared cores; the threshold Locust warns at is lowered
    # instead (--cpu-warning-percent 1), so the real warning path (Locust's CPU monitor) is what fires.
    code, summary, _, out = load(capsys, tmp_path, "--duration", "10s", "--cpu-warning-percent", "1")
    assert code == 2, out
    assert summary["verdict"] == "inconclusive" and summary["cpu_warning"] is True
    assert "CPU" in summary["reasons"][0]


def test_two_worker_processes(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, summary, folder, out = load(capsys, tmp_path, "--duration", "10s", "--processes", "2", "--users", "8",
                                     "--gate", "warning")
    assert code == 0, out
    assert json.loads((folder / "lag.json").read_text())["workers"] is True
    with_frames = [p for p in (folder / "record").glob("*.jsonl") if '"kind":"frame"' in p.read_text()]
    assert len(with_frames) == 2, list((folder / "record").iterdir())
    assert sum(summary["classes"].values()) >= summary["configuration"]["min_samples"]


@pytest.mark.parametrize("spec", ["sse:latency=300", "sse:bogus@1s", "nowhere:latency=1@1s-2s", "sse:latency@9s-2s",
                                  "kill:api-0@20s-40s"])
def test_a_bad_fault_spec_is_one_line_before_anything_starts(
        capsys: pytest.CaptureFixture[str], tmp_path: Path, spec: str) -> None:
    code, out, err = run_cli(capsys, "load", "--duration", "10s", "--fault", spec, "--out", str(tmp_path))
    assert code == 2 and err.startswith("harness: error: --fault") and len(err.strip().splitlines()) == 1, err
    assert not list(tmp_path.iterdir())
