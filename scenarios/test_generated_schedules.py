"""Generated fault schedules (Hypothesis stateful testing) against the real local stack: runs, SSE
consumers that reconnect, and faults injected and healed in generated orders; the final check of
every schedule judges every invariant the suite knows.

Two budgets: a fixed regression set (derandomized: the same schedules in every run, so a red build is
reproducible as is) and one fresh random seed per run, printed in pytest's output; when the fresh seed
fails, its reproduction (seed, shrunk schedule, replay command) is written to the scenario's folder.
`harness explore` runs the same machine with a larger budget."""
from __future__ import annotations

import os
import random
from pathlib import Path
from typing import Callable

import pytest

from harness.explore import ExploreBudget, explore, explore_report
from harness.stack import LocalStack

pytestmark = [pytest.mark.stack]

FRESH = {"examples": 3, "steps": 10}  # small: make test pays for it on every run


def _folder(tmp_path: Path, name: str) -> Path:
    root = os.environ.get("HARNESS_REPORT_DIR")
    return Path(root) / "scenarios" / name if root else tmp_path


def test_generated_fault_schedules_keep_every_invariant(stack: LocalStack, tmp_path: Path) -> None:
    explore(stack, ExploreBudget.ci(), _folder(tmp_path, "generated_schedules"))


def test_a_fresh_random_seed_keeps_every_invariant(stack: LocalStack, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str],
                                                   record_property: Callable[[str, object], None]) -> None:
    seed = random.randrange(2**32)
    replay = f"harness explore --seed {seed} --examples {FRESH['examples']} --steps {FRESH['steps']}"
    record_property("seed", seed)
    with capsys.disabled():
        print(f"\ngenerated schedules: fresh seed {seed} (replay: {replay})")
    folder = _folder(tmp_path, f"generated_schedules_seed_{seed}")
    outcome = explore_report(stack, ExploreBudget(**FRESH, seed=seed), folder)
    if not outcome.passed:
        (folder / "reproduction.txt").write_text(f"replay: {replay}\n{outcome.reproduction}")
    assert outcome.passed, f"fresh seed {seed} failed; replay: {replay}; files in {folder}\n{outcome.reproduction}"
