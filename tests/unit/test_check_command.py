"""`harness check DIR`: the checkers re-run offline over hand-written scenario folders."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from harness.checks import CHECKERS, CheckOptions
from harness.model import Snapshot
from harness.cli import main
from harness.history import Record, save_jsonl
from _histories import Builder, snapshot

DELIVERY = ["exactly_once", "ordering", "gapless"]


def _write(folder: Path, records: list[Record], snap: Snapshot | None, checks: dict[str, Any] | None = None) -> Path:
    folder.mkdir(parents=True)
    save_jsonl(records, folder / "history.jsonl")
    if snap is not None:
        (folder / "snapshot.json").write_text(json.dumps(snap.to_dict()))
    if checks is not None:
        (folder / "checks.json").write_text(json.dumps(checks))
    return folder


def _good() -> list[Record]:
    b = Builder().open("k1").frames("k1", [1, 2]).close("k1", "error", last_seq=2)
    b.fault("toxic:reset_peer", b.t, b.t + 0.2).tick(0.3)
    return b.open("k2", from_seq=2).frames("k2", [3, 4], last_type="RunFinished").close("k2", "terminal", 4).records


def _duplicated() -> list[Record]:
    b = Builder().open("k1").frames("k1", [1, 2, 2, 3], last_type="RunFinished")
    return b.close("k1", "terminal", 3).records


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    try:
        main(list(args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_a_passing_scenario_folder_exits_0(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _write(tmp_path / "s1", _good(), snapshot(4), {"checks": {"ordering": {"valid": True}}, "opts": {}})
    code, out, _ = run(capsys, "check", str(folder), *sum((["--invariant", n] for n in DELIVERY), []))
    assert code == 0, out
    assert "exactly_once" in out and "verdict: pass" in out


def test_a_failing_scenario_exits_1_with_evidence_in_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _write(tmp_path / "s1", _duplicated(), snapshot(3))
    code, out, _ = run(capsys, "check", str(folder), "-i", "exactly_once", "--json")
    assert code == 1
    data = json.loads(out)
    assert data["valid"] is False
    assert data["scenarios"][0]["checks"]["exactly_once"]["valid"] is False


def test_a_report_folder_rechecks_every_judged_scenario(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = tmp_path / "report" / "scenarios"
    _write(root / "good", _good(), snapshot(4), {"checks": {n: {"valid": True} for n in DELIVERY}})
    _write(root / "bad", _duplicated(), snapshot(3), {"checks": {n: {"valid": True} for n in DELIVERY}})
    _write(root / "unjudged", _good(), None)
    code, out, _ = run(capsys, "check", str(tmp_path / "report"), "--json")
    data = json.loads(out)
    assert code == 1 and data["valid"] is False
    by_name = {Path(s["folder"]).name: s for s in data["scenarios"]}
    assert by_name["good"]["valid"] is True and set(by_name["good"]["checks"]) == set(DELIVERY)
    assert by_name["bad"]["valid"] is False and by_name["bad"]["recorded"]["exactly_once"] is True
    assert "skipped" in by_name["unjudged"]


def test_all_checkers_by_default_and_unknown_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _write(tmp_path / "s1", _good(), snapshot(4))
    code, out, _ = run(capsys, "check", str(folder), "--json")
    checks = json.loads(out)["scenarios"][0]["checks"]
    assert set(checks) == set(CHECKERS)  # no checks.json: every invariant
    assert code == 2  # e.g. heartbeat cannot be decided from this history


@pytest.mark.parametrize("setup", ["missing_dir", "no_history", "no_snapshot", "bad_json", "bad_invariant"])
def test_bad_input_is_one_line_and_exit_2(setup: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "s1"
    args = ["check", str(folder)]
    if setup == "no_history":
        folder.mkdir()
    elif setup == "no_snapshot":
        _write(folder, _good(), None)
    elif setup == "bad_json":
        _write(folder, _good(), snapshot(4))
        (folder / "snapshot.json").write_text("{not json")
    elif setup == "bad_invariant":
        _write(folder, _good(), snapshot(4))
        args += ["-i", "no_such_invariant"]
    code, out, err = run(capsys, *args)
    assert code == 2
    assert err.strip().count("\n") == 0 and "error" in err


def _judged_as_the_run(tmp_path: Path, expected: dict[str, Any]) -> Path:
    """A scenario whose log has a gap on purpose (seq 2 missing) and that judged gapless expecting False."""
    full = snapshot(3)
    run_ = full.runs["r1"]
    snap = dataclasses.replace(full, runs={"r1": dataclasses.replace(
        run_, events=tuple(e for e in run_.events if e.seq != 2))})
    checks = {"judged": ["ordering", "gapless"], "opts": {}, "expected": expected,
              "checks": {"ordering": {"valid": True}, "gapless": {"valid": False}}}
    return _write(tmp_path / "s1", Builder().open("k1").frames("k1", [1]).records, snap, checks)


def test_the_run_s_judgement_is_re_judged_with_its_expected_verdicts(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    folder = _judged_as_the_run(tmp_path, {"gapless": False})
    code, out, _ = run(capsys, "check", str(folder), "--json")
    data = json.loads(out)["scenarios"][0]
    assert set(data["checks"]) == {"ordering", "gapless"}  # only what the run judged
    assert data["checks"]["gapless"]["valid"] is False and data["expected"] == {"gapless": False}
    assert (code, data["valid"]) == (0, True), out  # the expected violation is the scenario's pass


def test_an_expected_verdict_that_is_not_found_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _judged_as_the_run(tmp_path, {"ordering": False})  # expected a violation that is not there
    code, out, _ = run(capsys, "check", str(folder), "--json")
    assert code == 1 and json.loads(out)["valid"] is False


def test_all_judges_every_invariant_without_expectations(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = _judged_as_the_run(tmp_path, {"gapless": False})
    code, out, _ = run(capsys, "check", str(folder), "--all", "--json")
    data = json.loads(out)["scenarios"][0]
    assert set(data["checks"]) == set(CHECKERS) and data["expected"] == {}
    assert code == 1 and data["valid"] is False


def test_check_agrees_with_what_judge_recorded(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.history import History
    from harness.scenario import ScenarioRecord

    frames = Builder().open("k1").frames("k1", [1, 3], last_type="RunFinished").close("k1", "terminal", 3)
    record = ScenarioRecord(tmp_path / "s1", History(frames.records))
    record.folder.mkdir()
    full = snapshot(3)
    gapped = dataclasses.replace(full.runs["r1"], events=tuple(e for e in full.runs["r1"].events if e.seq != 2))
    result = record.judge(dataclasses.replace(full, runs={"r1": gapped}), ("ordering", "gapless"),
                          expect={"gapless": False})
    assert result.evidence["gapless"]["valid"] is False  # the violation the scenario provoked
    recorded = json.loads(record.checks_file.read_text())
    assert (recorded["judged"], recorded["expected"]) == (["ordering", "gapless"], {"gapless": False})
    code, out, _ = run(capsys, "check", str(record.folder), "--json")
    assert code == 0, out
    with pytest.raises(ValueError, match="not judged"):
        record.judge(full, ("ordering",), expect={"gapless": False})


def test_options_round_trip_from_judge_to_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from harness.history import History
    from harness.scenario import ScenarioRecord

    # a consumer that stopped before the end: unknown by default, its prefix judged when relaxed
    gave_up = Builder().open("k1").frames("k1", [1, 2]).close("k1", "timeout").records
    record = ScenarioRecord(tmp_path / "s1", History(gave_up))
    record.folder.mkdir()
    assert record.judge(snapshot(4), ("exactly_once",)).valid == "unknown"
    result = record.judge(snapshot(4), ("exactly_once",), {"require_terminal": {"c": False}})
    assert result.valid is True
    recorded = json.loads(record.checks_file.read_text())["opts"]
    assert recorded == {**CheckOptions().to_dict(), "require_terminal": {"c": False}}  # every option, plain JSON
    code, out, _ = run(capsys, "check", str(record.folder), "--json")
    assert (code, json.loads(out)["scenarios"][0]["checks"]["exactly_once"]["valid"]) == (0, True), out


@pytest.mark.parametrize(("opts", "code"), [({"require_terminal": False}, 0), ({"require_terminl": False}, 2)])
def test_check_reads_the_dict_opts_of_older_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                 opts: dict[str, Any], code: int) -> None:
    """Before options were typed, checks.json held only the keys a scenario passed; a misspelt one is
    a usage error naming the file, not a silent default."""
    gave_up = Builder().open("k1").frames("k1", [1, 2]).close("k1", "timeout").records
    folder = _write(tmp_path / "s1", gave_up, snapshot(4), {"judged": ["exactly_once"], "opts": opts})
    got, out, err = run(capsys, "check", str(folder))
    assert got == code, (out, err)
    if code == 2:
        assert "checks.json" in err and "require_terminl" in err
