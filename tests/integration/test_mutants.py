"""The harness has teeth: every known-bad variant in tests/mutants/ is killed by its scenarios for the
reason its `# expect:` names.

Each mutant starts its own stack (a few seconds) and runs only its scenarios, once here and three at a
time (33 mutants one after the other took 10 minutes on 2 cores, too long for `make test`; the 42 now take
264 s two at a time and 173-197 s three at a time: a mutant's scenario mostly waits on its stack, so two
left the cores a third idle);
`harness mutants` runs each twice (a kill must reproduce) and prints the expected against the observed
cause. The unpatched reference is not run again here: the scenario suites of the same `make test` run
every one of these scenarios against it.
"""
from __future__ import annotations

import pytest

from harness.mutants import MutantResult, load_mutants, run_mutants

MATRIX_TIMEOUT_S = 1200

# The whole matrix runs in the first test's setup: pytest.ini's 300 s per test is far too short for it.
pytestmark = [pytest.mark.tool("patch"), pytest.mark.timeout(MATRIX_TIMEOUT_S)]

MUTANTS = load_mutants()
RUNS_IN_MAKE_TEST = 1
JOBS_IN_MAKE_TEST = 3


@pytest.fixture(scope="module")
def kill_matrix() -> dict[str, MutantResult]:
    return {r.name: r for r in run_mutants(MUTANTS, runs=RUNS_IN_MAKE_TEST, jobs=JOBS_IN_MAKE_TEST)}


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_is_killed_for_the_expected_reason(mutant, kill_matrix) -> None:  # type: ignore[no-untyped-def]
    result = kill_matrix[mutant.name]
    assert result.verdict == "killed", (f"{mutant.name} {result.verdict}: expected /{mutant.expect}/, observed "
                                        f"{result.killed_by or ''}: {result.detail} (bug: {mutant.bug})")
