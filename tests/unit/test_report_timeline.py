"""The report's timeline: inline SVG of fault windows and each consumer's connections and frames."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

from harness.history import save_jsonl
from harness.report import render_index
from harness.report.timeline import render_timeline, timeline_for_history_file
from _histories import Builder

SVG = "{http://www.w3.org/2000/svg}"


def _history() -> Builder:
    b = Builder().open("k1", consumer="c0").frames("k1", [1, 2]).close("k1", "error", last_seq=2)
    b.open("k2", consumer="c1").frames("k2", [1, 2, 3])
    return b.fault("toxic:latency", 0.01, 0.04).fault("kill", 0.05, None)


def test_faults_are_bars_and_consumers_have_connections_and_frames() -> None:
    svg = render_timeline(_history().records)
    root = ET.fromstring(svg)  # well-formed XML, no script
    assert root.tag == f"{SVG}svg" and not root.findall(f".//{SVG}script")
    bars = root.findall(f"{SVG}rect")
    assert len(bars) == 2
    assert "never healed" in bars[1].findtext(f"{SVG}title", "")
    assert len(root.findall(f"{SVG}line")) == 2  # one per connection
    reds = [c for c in root.findall(f"{SVG}circle") if c.get("fill") == "#b3261e"]
    assert len(reds) == 1  # k1 closed by an error
    assert [p.findtext(f"{SVG}title") for p in root.findall(f"{SVG}path")] == [
        "2 frames, seq 1..2", "3 frames, seq 1..3"]
    labels = [t.text for t in root.findall(f"{SVG}text")]
    assert "c0" in labels and "c1" in labels and "toxic:latency sse" in labels


def test_empty_or_missing_history_draws_nothing(tmp_path: Path) -> None:
    assert render_timeline([]) == ""
    assert timeline_for_history_file(tmp_path / "none.jsonl") == ""


def test_the_report_shows_the_timeline_of_a_failed_scenario_only(tmp_path: Path) -> None:
    save_jsonl(_history().records, tmp_path / "history.jsonl")
    (tmp_path / "checks.json").write_text("{}")
    scenario = {"verdict": "fail", "suite": "s", "nodeid": "t::x", "seconds": 1.0, "message": "m", "detail": "d",
                "checks": {}, "faults": [], "properties": {"checks_file": str(tmp_path / "checks.json")}}
    summary = {"verdict": "fail", "counts": {"fail": 1}, "seconds": 1, "started": "now",
               "scenarios": [scenario, {**scenario, "verdict": "pass", "nodeid": "t::y"}]}
    html = render_index(json.loads(json.dumps(summary)))
    assert html.count("<svg class='timeline'") == 1
    assert render_index({**summary, "scenarios": [{**scenario, "faults": None}]}).count("<svg") == 0
