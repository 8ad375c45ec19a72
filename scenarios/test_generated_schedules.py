"""Generated fault schedules (Hypothesis stateful testing) against the real local stack: runs, SSE
consumers that reconnect, and faults injected and healed in generated orders; the final check of
every schedule judges every invariant the suite knows.

Two budgets: a fixed regression set (derandomized: the same schedules in every run, so a red build is
reproducible as is) and one fresh random seed per run, printed in pytest's output; when the fresh seed
fails, its reproduction (seed, shrunk schedule, replay command) is written to the scenario's folder.
`harness explore` runs the same machine with a larger budget."""
from __future__ import annotations

import dataclasses
import random
from typing import Callable

import pytest

from harness.explore import ExploreBudget, explore, explore_report
from harness.toolkit import Scenario

pytestmark = [pytest.mark.stack]

FRESH = ExploreBudget(examples=3, steps=10)  # small: make test pays for it on every run


def test_generated_fault_schedules_keep_every_invariant(scenario: Scenario) -> None:
    explore(scenario.stack, ExploreBudget.ci(), scenario.folder / "schedules")  # its own histories, judged there


def test_a_fresh_random_seed_keeps_every_invariant(scenario: Scenario, capsys: pytest.CaptureFixture[str],
                                                   record_property: Callable[[str, object], None]) -> None:
    seed = random.randrange(2**32)
    replay = f"harness explore --seed {seed} --examples {FRESH.examples} --steps {FRESH.steps}"
    record_property("seed", seed)
    with capsys.disabled():
        print(f"\ngenerated schedules: fresh seed {seed} (replay: {replay})")
    folder = scenario.folder / f"schedules_seed_{seed}"
    outcome = explore_report(scenario.stack, dataclasses.replace(FRESH, seed=seed), folder)
    if not outcome.passed:
        (folder / "reproduction.txt").write_text(f"replay: {replay}\n{outcome.reproduction}")
    assert outcome.passed, f"fresh seed {seed} failed; replay: {replay}; files in {folder}\n{outcome.reproduction}"
