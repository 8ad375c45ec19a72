"""Generated fault schedules (Hypothesis stateful testing) against the real local stack: runs, SSE
consumers that reconnect, and faults injected and healed in generated orders; the final check of
every schedule judges every invariant the suite knows.

Two budgets: a fixed regression set (derandomized: the same schedules in every run, so a red build is
reproducible as is) and one fresh random seed per run, printed in pytest's output; when the fresh seed
fails, its reproduction (seed, shrunk schedule, replay command) is written to the scenario's folder.
Under `harness run` a failure's shrunk schedule is kept in the scenario's reproduction.json, and
`harness replay` runs exactly that schedule again. `harness explore` runs the same machine with a
larger budget."""
from __future__ import annotations

import dataclasses
import random
from pathlib import Path
from typing import Callable

import pytest

from harness.errors import ConfigError
from harness.explore import ExploreBudget, ExploreOutcome, Shrunk, explore_report
from harness.reproduction import ScenarioChoices
from harness.toolkit import Scenario

pytestmark = [pytest.mark.stack]

FRESH = ExploreBudget(examples=3, steps=10)  # small: make test pays for it on every run


def _explore(scenario: Scenario, reproduction: ScenarioChoices, budget: ExploreBudget, folder: Path) -> ExploreOutcome:
    """The schedules; a failure's shrunk schedule recorded, and on a replay exactly that one run again."""
    replayed = reproduction.replayed.get("shrunk")
    if replayed:
        budget = dataclasses.replace(budget, reproduce=Shrunk(replayed["hypothesis"], replayed["blob"]))
    try:
        outcome = explore_report(scenario.stack, budget, folder)
    except ConfigError as exc:  # the recorded schedule cannot run here: not judged, never a pass
        pytest.skip(f"replay: {exc}")
    shrunk = outcome.shrunk or budget.reproduce
    if not outcome.passed and shrunk is not None:
        reproduction.record(shrunk={**dataclasses.asdict(shrunk), "steps": list(outcome.steps)})
    return outcome


def test_generated_fault_schedules_keep_every_invariant(scenario: Scenario, reproduction: ScenarioChoices) -> None:
    # its own histories, judged there
    outcome = _explore(scenario, reproduction, ExploreBudget.ci(), scenario.folder / "schedules")
    assert outcome.passed, outcome.reproduction


def test_a_fresh_random_seed_keeps_every_invariant(scenario: Scenario, reproduction: ScenarioChoices,
                                                   capsys: pytest.CaptureFixture[str],
                                                   record_property: Callable[[str, object], None]) -> None:
    seed = reproduction.replayed.get("seed", random.randrange(2**32))
    reproduction.record(seed=seed)
    replay = f"harness explore --seed {seed} --examples {FRESH.examples} --steps {FRESH.steps}"
    record_property("seed", seed)
    with capsys.disabled():
        print(f"\ngenerated schedules: fresh seed {seed} (replay: {replay})")
    folder = scenario.folder / f"schedules_seed_{seed}"
    outcome = _explore(scenario, reproduction, dataclasses.replace(FRESH, seed=seed), folder)
    if not outcome.passed:
        (folder / "reproduction.txt").write_text(f"replay: {replay}\n{outcome.reproduction}")
    assert outcome.passed, f"fresh seed {seed} failed; replay: {replay}; files in {folder}\n{outcome.reproduction}"
