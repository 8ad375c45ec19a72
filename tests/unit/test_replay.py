"""Replays on plain data: reproduction.json written and read back, the scenarios a report's replay picks,
the verdict over N replays, and an exact replay of a Hypothesis failure's shrunk example (a tiny state
machine, no stack)."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import hypothesis
import pytest
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, rule

from harness import reproduction
from harness.errors import ConfigError
from harness.explore import ExploreBudget, ScheduleLog, Shrunk, run_machine
from harness.replay import Replayed, commit_note, replay_exit, select_failed

NODEID = "scenarios/test_x.py::test_y[a-b]"


def test_a_reproduction_round_trips_with_portable_paths_and_recorded_choices(tmp_path: Path) -> None:
    options = {"target": str(reproduction.REPO / "profiles" / "reference.toml"), "service_dir": str(tmp_path),
               "infra": "docker", "service_command": ""}
    path = reproduction.write(tmp_path, NODEID, options, {"commit": "abc", "dirty": False})
    reproduction.record(path, seed=7)
    (tmp_path / "history.jsonl").write_text("")
    reproduction.note_files(path)
    data = reproduction.read(path)
    assert data["options"] == {"target": "profiles/reference.toml", "service_dir": str(tmp_path), "infra": "docker"}
    assert (data["recorded"], data["files"], data["commit"]) == ({"seed": 7}, ["history.jsonl"], {"commit": "abc", "dirty": False})
    assert reproduction.replay_args(data) == ["--target", str(reproduction.REPO / "profiles" / "reference.toml"),
                                              "--infra", "docker", "--service-dir", str(tmp_path)]


def test_a_replayed_test_gets_back_what_it_recorded(tmp_path: Path) -> None:
    folder = tmp_path / "scenarios" / reproduction.scenario_slug(NODEID)
    folder.mkdir(parents=True)
    reproduction.record(reproduction.write(folder, NODEID, {}, None), shrunk={"blob": "x"})
    assert reproduction.recorded_for(NODEID, {reproduction.REPLAY_OF_ENV: str(tmp_path)}) == {"shrunk": {"blob": "x"}}
    assert reproduction.recorded_for(NODEID, {}) == {}  # a first run


@pytest.mark.parametrize("content", [None, "{not json", json.dumps({"nodeid": 3})])
def test_a_missing_or_malformed_reproduction_is_one_line(tmp_path: Path, content: str | None) -> None:
    if content is not None:
        (tmp_path / reproduction.FILE).write_text(content)
    with pytest.raises(ConfigError) as err:
        reproduction.read(tmp_path / reproduction.FILE)
    assert "\n" not in str(err.value)


def _report(tmp_path: Path, verdicts: dict[str, str]) -> Path:
    scenarios: list[dict[str, Any]] = [{"nodeid": n, "verdict": v} for n, v in verdicts.items()]
    reproduction.add_replay_commands(tmp_path, scenarios)
    (tmp_path / "summary.json").write_text(json.dumps({"scenarios": scenarios}))
    return tmp_path


def test_the_replay_command_names_a_failed_scenario_uniquely(tmp_path: Path) -> None:
    _report(tmp_path, {"scenarios.test_a::test_x[p]": "fail", "scenarios.test_a::test_y": "fail",
                       "scenarios.test_b::test_y": "pass"})
    scenarios = json.loads((tmp_path / "summary.json").read_text())["scenarios"]
    assert scenarios[0]["replay"].endswith("--scenario 'test_x[p]'")
    assert scenarios[1]["replay"].endswith("--scenario scenarios.test_a::test_y")  # test_y is in two suites
    assert "replay" not in scenarios[2]


def test_replay_picks_the_failed_scenarios_or_the_named_one(tmp_path: Path) -> None:
    report = _report(tmp_path, {"s.test_a::test_x[p]": "fail", "s.test_a::test_x[q]": "fail",
                                "s.test_a::test_z": "pass"})
    assert len(select_failed(report)) == 2
    assert [s["nodeid"] for s in select_failed(report, "test_x[q]")] == ["s.test_a::test_x[q]"]
    assert len(select_failed(report, "test_x")) == 2  # every parameter
    with pytest.raises(ConfigError, match="did not fail"):
        select_failed(report, "test_z")
    with pytest.raises(ConfigError, match="no scenario 'nope'.*test_x"):
        select_failed(report, "nope")
    with pytest.raises(ConfigError, match="not a report folder"):
        select_failed(tmp_path / "elsewhere")
    green = tmp_path / "green"
    green.mkdir()
    with pytest.raises(ConfigError, match="no scenario failed"):
        select_failed(_report(green, {"s.test_a::test_z": "pass"}))


@pytest.mark.parametrize(("verdicts", "outcome", "said"), [
    (("fail", "fail"), "reproduced", "reproduced 2 of 2"),
    (("pass", "fail", "unknown"), "reproduced", "reproduced 1 of 3"),
    (("pass", "pass"), "did_not_reproduce", "did not reproduce (0 of 2)"),
    (("pass", "unknown"), "unknown", "unknown"),
])
def test_the_verdict_over_n_replays(verdicts: tuple[str, ...], outcome: str, said: str) -> None:
    result = Replayed("n", verdicts)
    assert result.outcome == outcome and result.describe().startswith(said)


def test_the_exit_code_is_1_for_a_failure_that_did_not_reproduce_2_for_an_unjudged_one() -> None:
    good, gone, unjudged = Replayed("a", ("fail",)), Replayed("b", ("pass",)), Replayed("c", ("unknown",))
    assert (replay_exit([good]), replay_exit([good, unjudged]), replay_exit([good, gone, unjudged])) == (0, 2, 1)


LIMIT = {"below": 50}  # the "bug": a step at or above it fails; raising it is the fix


class Counter(RuleBasedStateMachine):
    @rule(x=st.integers(0, 100))
    def step(self, x: int) -> None:
        assert x < LIMIT["below"]


def test_a_shrunk_failure_replays_exactly_and_passing_it_is_no_error(monkeypatch: pytest.MonkeyPatch) -> None:
    log = ScheduleLog()
    with pytest.raises(AssertionError):
        run_machine(Counter, ExploreBudget(examples=50, steps=5), log)
    assert log.shrunk is not None and log.shrunk.hypothesis == hypothesis.__version__
    replay = ExploreBudget(examples=50, steps=5, reproduce=log.shrunk)
    with pytest.raises(AssertionError, match="assert 50 < 50"):  # exactly the shrunk example: x=50
        run_machine(Counter, replay, ScheduleLog())
    monkeypatch.setitem(LIMIT, "below", 101)
    run_machine(Counter, replay, ScheduleLog())  # the fix: the same schedule passes
    with pytest.raises(ConfigError, match="Hypothesis 0.0"):
        run_machine(Counter, ExploreBudget(reproduce=Shrunk("0.0", log.shrunk.blob)), ScheduleLog())


def test_a_replay_names_the_commit_the_report_ran_when_this_checkout_differs() -> None:
    then = {"commit": "a" * 40, "dirty": False}
    assert commit_note([{"commit": then}], dict(then)) is None
    assert commit_note([{"commit": None}], then) is None  # the report ran without git
    assert "this checkout is aaaaaaaaaaaa with changes" in str(commit_note([{"commit": then}], {**then, "dirty": True}))
    assert "this checkout is bbbbbbbbbbbb" in str(commit_note([{"commit": then}], {"commit": "b" * 40, "dirty": False}))
