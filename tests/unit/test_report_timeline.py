"""The report's figure of a scenario: a PNG from its history (and snapshot and checks), with each
counterexample placed on its consumer's lane and time."""
from __future__ import annotations

import json
from pathlib import Path

from harness.history import ConnClosed, save_jsonl
from harness.report.timeline import FIGURE, Mark, counterexample_marks, render_figure
from _histories import WALL0, Builder, snapshot

PNG = b"\x89PNG\r\n\x1a\n"


def _history() -> Builder:
    b = Builder().open("k1", consumer="c0").frames("k1", [1, 2]).close("k1", "error", last_seq=2)
    b.open("k2", consumer="c1").frames("k2", [1, 2, 3]).heartbeat("k2")
    return b.fault("toxic:latency", 0.01, 0.04, target="pg_outbox").fault("kill", 0.05, None, target="api")


def test_counterexamples_are_placed_by_their_time_or_their_connection() -> None:
    records = _history().records
    checks = {"ordering": {"valid": False, "counterexample": {"conn": "k1", "consumer": "c0", "seq": 2}},
              "delivered_lag": {"valid": False, "counterexample": {"time": WALL0 + 0.5, "lag_ms": 700.0, "seq": 3}},
              "exactly_once": {"valid": True, "counterexample": {"wall": WALL0}},  # held: nothing to mark
              "gapless": {"valid": False, "counterexample": {"seq": 4}}}  # no time: nowhere to put it
    close_wall = next(r.wall for r in records if isinstance(r, ConnClosed))
    assert counterexample_marks(checks, records) == [Mark("ordering", close_wall, "c0"),
                                                     Mark("delivered_lag", WALL0 + 0.5, None, 700.0)]


def test_a_scenario_folder_gets_its_figure(tmp_path: Path) -> None:
    save_jsonl(_history().records, tmp_path / "history.jsonl")
    (tmp_path / "snapshot.json").write_text(json.dumps(snapshot(3, ts=WALL0 - 0.2).to_dict()))
    (tmp_path / "checks.json").write_text(json.dumps({"checks": {"delivered_lag": {
        "valid": False, "counterexample": {"time": WALL0 + 0.03, "lag_ms": 230.0}}}}))
    out = render_figure(tmp_path)
    assert out == tmp_path / FIGURE and out.read_bytes().startswith(PNG)


def test_nothing_to_draw_draws_nothing(tmp_path: Path) -> None:
    assert render_figure(tmp_path) is None  # no history
    save_jsonl([], tmp_path / "history.jsonl")
    assert render_figure(tmp_path) is None and not (tmp_path / FIGURE).exists()


def test_a_scenario_that_never_judged_still_gets_its_figure(tmp_path: Path) -> None:
    """A failure before `judge()` leaves a history only: no snapshot, no checks."""
    save_jsonl(_history().records, tmp_path / "history.jsonl")
    assert render_figure(tmp_path) == tmp_path / FIGURE
