"""The harness has teeth: every known-bad variant in tests/mutants/ is killed by its scenarios for the
reason its `# expect:` names, and the unpatched reference, run the same way, passes them (so a kill is
the bug's doing, not the harness's).

Each mutant starts its own stack (a few seconds) and runs only its scenarios. Here each runs ONCE
(measured on 2 cores shared with other work: 20 mutants twice took 9.5 minutes; 33 mutants once plus the
control, 10 minutes), too long twice for `make test`; `harness mutants` runs each twice (a kill must
reproduce) and prints the expected against the observed cause.
"""
from __future__ import annotations

import pytest

from harness.mutants import control, load_mutants, run_mutant

pytestmark = pytest.mark.tool("patch")

MUTANTS = load_mutants()
RUNS_IN_MAKE_TEST = 1


def test_the_reference_passes_the_mutants_scenarios() -> None:
    result = run_mutant(control(MUTANTS), runs=RUNS_IN_MAKE_TEST)
    assert result.verdict == "survived", f"{result.verdict}: {result.killed_by or ''} {result.detail}"


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_is_killed_for_the_expected_reason(mutant) -> None:  # type: ignore[no-untyped-def]
    result = run_mutant(mutant, runs=RUNS_IN_MAKE_TEST)
    assert result.verdict == "killed", (f"{mutant.name} {result.verdict}: expected /{mutant.expect}/, observed "
                                        f"{result.killed_by or ''}: {result.detail} (bug: {mutant.bug})")
