"""The harness has teeth: every known-bad variant in tests/mutants/ is killed by its scenarios, and the
unpatched reference, run the same way, passes them (so a kill is the bug's doing, not the harness's).

Each mutant starts its own stack (a few seconds) and runs only its scenarios; the whole module takes
about 1.5-2 minutes on 2 cores. `harness mutants` prints the same matrix.
"""
from __future__ import annotations

import pytest

from harness.mutants import control, load_mutants, run_mutant

pytestmark = pytest.mark.tool("patch")

MUTANTS = load_mutants()


def test_the_reference_passes_the_mutants_scenarios() -> None:
    result = run_mutant(control(MUTANTS))
    assert result.verdict == "survived", f"{result.verdict}: {result.killed_by or ''} {result.detail}"


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_is_killed(mutant) -> None:  # type: ignore[no-untyped-def]
    result = run_mutant(mutant)
    assert result.verdict == "killed", f"{mutant.name} {result.verdict}: {result.detail} (bug: {mutant.bug})"
