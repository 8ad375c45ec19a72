"""The HTML report: readable names, the order and marks, the glossary, and two whole reports (a failing
and a passing scenario, from hand-made files) whose every anchor, link and image resolves."""
from __future__ import annotations

import json
import re
from html import unescape
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from harness.checks import CHECKERS
from harness.checks.glossary import GLOSSARY
from harness.history import save_jsonl
from harness.report import write_report
from harness.report.names import params, title
from harness.report.outline import invariant_outcomes, sections
from harness.report.timeline import FIGURE
from harness.reproduction import REPO, scenario_slug
from _histories import WALL0, Builder, snapshot


def test_names_read_as_sentences_without_the_anyio_backend() -> None:
    nodeid = "scenarios.test_conformance::test_a_killed_queue_worker_s_job_is_resumed[asyncio]"
    assert title({"nodeid": nodeid}) == "A killed queue worker's job is resumed" and params({"nodeid": nodeid}) == ""
    assert params({"nodeid": "scenarios.test_c::test_x[asyncio-harness-from_seq]"}) == "harness-from_seq"
    assert params({"nodeid": "scenarios.test_db::test_y[asyncio-outbox-worker]"}) == "outbox-worker"
    assert title({"nodeid": "m::test_z", "name": "test_gap_s_end"}) == "Gap's end"  # summary.json's name first


def _entry(nodeid: str, verdict: str, section: str = "S", **extra: Any) -> dict[str, Any]:
    return {"nodeid": nodeid, "suite": "s", "verdict": verdict, "seconds": 1.0, "message": "", "detail": "",
            "properties": {"runbook_section": section}, **extra}


def test_sections_with_failures_come_first_and_failures_lead_each_section() -> None:
    scenarios = [_entry("m::test_b", "pass", "Alpha"), _entry("m::test_a", "pass", "Zulu"),
                 _entry("m::test_c", "fail", "Zulu"), _entry("m::test_d", "not_applicable", "Alpha"),
                 _entry("m::test_e", "unknown", "Beta")]
    grouped = sections(scenarios)
    assert [s.title for s in grouped] == ["Zulu", "Beta", "Alpha"]
    assert [s["nodeid"] for s in grouped[0].scenarios] == ["m::test_c", "m::test_a"]
    assert grouped[0].counts == {"pass": 1, "fail": 1}
    assert [s["nodeid"] for s in grouped[2].scenarios] == ["m::test_b", "m::test_d"]


def test_an_expected_violation_is_expected_and_an_unexpected_one_fails() -> None:
    checks = {"exactly_once": {"valid": True}, "gapless": {"valid": False}, "outbox_converged": {"valid": True},
              "lag": {"valid": "unknown"}, "ordering": {"valid": False}}
    rows = invariant_outcomes(checks, {"gapless": False, "outbox_converged": False})
    assert [(r.name, r.outcome) for r in rows] == [
        ("outbox_converged", "fail"), ("ordering", "fail"), ("lag", "unknown"), ("gapless", "expected"),
        ("exactly_once", "pass")]


def test_the_glossary_is_every_checker_and_docs_contracts_says_the_same() -> None:
    assert set(GLOSSARY) == set(CHECKERS)
    table = {m.group(1): m.group(2) for line in (REPO / "docs" / "CONTRACTS.md").read_text().splitlines()
             if (m := re.match(r"^\| `(\w+)` \| (.+?) \| .+ \|$", line)) and m.group(1) in CHECKERS}
    assert table == GLOSSARY


def test_the_readme_names_every_invariant() -> None:
    readme = (REPO / "README.md").read_text().split("## Invariants", 1)[1].split("\n## ", 1)[0]
    named = {m.group(1) for line in readme.splitlines() if (m := re.match(r"^\| `(\w+)` \| ", line))}
    assert named - {"true", "false", "unknown"} == set(GLOSSARY)


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.hrefs: list[str] = []
        self.images: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        found = dict(attrs)
        if found.get("id"):
            self.ids.add(str(found["id"]))
        if tag == "a" and found.get("href"):
            self.hrefs.append(str(found["href"]))
        if tag == "img":
            self.images.append(str(found.get("src")))


FAILED = "scenarios.test_lag::test_lag_stays_normal[asyncio-pg_outbox]"
PASSED = "scenarios.test_run_stuck::test_a_gap_stops_the_outbox[asyncio]"


def _scenario_files(report: Path, entry: dict[str, Any], checks: dict[str, Any], builder: Builder) -> None:
    module, function = entry["nodeid"].split("::")
    nodeid = f"{module.replace('.', '/')}.py::{function}"
    folder = report / "scenarios" / scenario_slug(nodeid)
    folder.mkdir(parents=True)
    save_jsonl(builder.records, folder / "history.jsonl")
    (folder / "snapshot.json").write_text(json.dumps(snapshot(6, ts=WALL0).to_dict()))
    (folder / "checks.json").write_text(json.dumps(checks))
    (folder / "reproduction.json").write_text(json.dumps(
        {"nodeid": nodeid, "options": {"service_dir": "/tmp/mutant"}, "commit": None, "recorded": {}, "files": []}))
    (folder / "service.log").write_text("==> logs/stack/api.log <==\n")
    files = {"history": "history.jsonl", "snapshot": "snapshot.json", "checks": "checks.json",
             "reproduction": "reproduction.json", "service_log": "service.log"}
    entry.update(checks, artefacts={key: (folder / name).relative_to(report).as_posix() for key, name in files.items()})


def _report(tmp_path: Path) -> tuple[Path, str]:
    b = Builder().fault("toxic:latency", 0.3, 0.6, target="pg_outbox").open("k1", consumer="c0")
    b.frames("k1", range(1, 4)).tick(0.5).heartbeat("k1").frames("k1", range(4, 7), last_type="RunFinished")
    b.close("k1", "error")
    late = {"time": WALL0 + 0.9, "lag_ms": 900.0, "run_id": "r1", "seq": 5}
    failed = _entry(FAILED, "fail", '"Outbox Lag" Diagnostic', message="delivered_lag: False",
                    replay=f"harness replay {tmp_path} --scenario 'test_lag_stays_normal[asyncio-pg_outbox]'")
    passed = _entry(PASSED, "pass", '"Run Stuck" Diagnostic Checklist')
    _scenario_files(tmp_path, failed, {"checks": {"exactly_once": {"valid": True}, "delivered_lag": {
        "valid": False, "problem": "p50 lag above the bound", "counterexample": late}},
        "faults": [r.to_dict() for r in b.records if r.kind == "fault"], "expected": {}}, b)
    _scenario_files(tmp_path, passed, {"checks": {"gapless": {"valid": False}, "ordering": {"valid": True}},
                                       "faults": [], "expected": {"gapless": False}}, b)
    summary = {"schema_version": 1, "harness": {"version": "0.1.0", "commit": "0123456789abcdef", "dirty": True},
               "command": "harness run --suite outbox_lag", "machine": {"hostname": "ci-7", "cpus": 2},
               "configuration": {"target": None, "infra": "local", "suites": ["outbox_lag"], "pytest_args": [],
                                 "stack": {"nginx": "off", "intervals": {"heartbeat_ms": 1000},
                                           "service_dir": "/tmp/mutant"}},
               "verdict": "fail", "started": "2026-12-02T16:00:00+00:00", "seconds": 75.0,
               "counts": {"pass": 1, "fail": 1, "unknown": 0, "not_applicable": 0},
               "scenarios": [passed, failed, _entry("scenarios.test_x::test_no_files", "pass")]}
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    (tmp_path / "logs" / "stack").mkdir(parents=True)
    page = write_report(tmp_path, summary)
    return page, page.read_text()


def test_every_anchor_link_and_image_of_a_report_resolves(tmp_path: Path) -> None:
    page, html = _report(tmp_path)
    refs = _Refs()
    refs.feed(html)
    anchors = [h[1:] for h in refs.hrefs if h.startswith("#")]
    assert anchors and set(anchors) <= refs.ids, set(anchors) - refs.ids
    files = [unquote(h) for h in refs.hrefs if not h.startswith("#")] + refs.images
    assert len(refs.images) == 2 and all(src.endswith(FIGURE) for src in refs.images)
    missing = [f for f in files if not (page.parent / f).exists()]
    assert files and not missing, missing
    assert {"history", "DB snapshot", "checks", "reproduction", "service log", "summary.json", "logs"} <= set(
        re.findall(r">([\w ./]+)</a>", html))


def test_a_report_reads_failures_first_with_marks_commands_and_expected_violations(tmp_path: Path) -> None:
    _, html = _report(tmp_path)
    text = unescape(re.sub(r"<[^>]+>", "", html))
    assert text.index("Lag stays normal") < text.index("A gap stops the outbox")  # the failed section first
    assert "✗ FAIL" in text and "✓ pass" in text and "✗ fail" in text
    assert "Lag stays normal</a><span class=params>pg_outbox</span>" in html  # no [asyncio-...] noise
    assert "gapless (expected)" in text and "violated, as expected" in text
    assert "harness replay" in text and "python -m pytest -p no:cacheprovider" in text
    assert "'scenarios/test_lag.py::test_lag_stays_normal[asyncio-pg_outbox]' --service-dir /tmp/mutant" in text
    assert "0123456789ab with uncommitted changes (harness 0.1.0)" in text and "took 1 min 15 s" in text
    assert "from /tmp/mutant" in text and "infra=local nginx=off intervals.heartbeat_ms=1000" in text
    assert "hostname ci-7, cpus 2" in text and "harness run --suite outbox_lag" in text
    assert all(f"id='inv-{name}'" in html for name in GLOSSARY)
    assert "<script" not in html
