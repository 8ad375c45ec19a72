"""The mutants' manifests parse, every patch still applies to reference_impl/, and a kill counts only when
a scenario failed for the reason the mutant's `# expect:` names, in every run."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness import mutants as mutants_module
from harness.mutants import MUTANTS_DIR, Mutant, MutantResult, _verdict, apply_mutant, load_mutants, parse_mutant, run_mutant

ALL = sorted(MUTANTS_DIR.glob("*.patch"))


def test_there_are_mutants_and_each_names_its_scenarios() -> None:
    mutants = load_mutants()
    assert len(mutants) >= 5
    scenarios = "".join(p.read_text() for p in (Path(__file__).resolve().parents[2] / "scenarios").glob("test_*.py"))
    for m in mutants:
        assert m.bug and m.pattern and m.scenarios and m.expect
        assert all(f"def {s}" in scenarios or s in scenarios for s in m.scenarios), m.name


@pytest.mark.tool("patch")
@pytest.mark.parametrize("patch", ALL, ids=lambda p: p.stem)
def test_every_patch_applies_cleanly_and_changes_the_service(patch: Path, tmp_path: Path) -> None:
    mutant = parse_mutant(patch)
    apply_mutant(mutant, tmp_path)
    changed = [p for p in (tmp_path / "reference_impl").glob("*.py")
               if p.read_text() != (MUTANTS_DIR.parents[1] / "reference_impl" / p.name).read_text()]
    assert changed, f"{mutant.name} changes nothing"
    for p in changed:
        compile(p.read_text(), str(p), "exec")  # a mutant is a working service with a bug, not a syntax error


def _write(tmp_path: Path, text: str, name: str = "m") -> Path:
    path = tmp_path / f"{name}.patch"
    path.write_text(text)
    return path


DIFF = "--- a/reference_impl/x.py\n+++ b/reference_impl/x.py\n@@ -1 +1 @@\n-a\n+b\n"
OK = "# bug: b\n# pattern: p\n# scenario: t\n# expect: e\n"


@pytest.mark.parametrize(("header", "message"), [
    ("# pattern: p\n# scenario: t\n# expect: e\n", "exactly one '# bug:'"),
    ("# bug: b\n# pattern: p\n# expect: e\n", "names no '# scenario:'"),
    ("# bug: b\n# pattern: p\n# scenario: t\n", "exactly one '# expect:'"),
    ("# bug: b\n# pattern: p\n# scenario: t\n# expect: exactly_once: (False\n", "'# expect:' is not a valid regex"),
    (OK + "# colour: red\n", "expected '# bug|pattern|scenario|expect: text'"),
    (OK + "stray line\n", "neither a '#' comment nor the diff"),
])
def test_a_malformed_manifest_is_a_clear_error_naming_the_mutant(tmp_path: Path, header: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"mutant broken:.*") as info:
        parse_mutant(_write(tmp_path, header + DIFF, "broken"))
    assert message in str(info.value)


def test_a_file_without_a_diff_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mutant empty: .* no unified diff"):
        parse_mutant(_write(tmp_path, OK, "empty"))


@pytest.mark.tool("patch")
def test_a_patch_that_no_longer_applies_is_an_error_naming_the_mutant(tmp_path: Path) -> None:
    stale = OK + "--- a/reference_impl/cursor.py\n+++ b/reference_impl/cursor.py\n" \
            "@@ -1,1 +1,1 @@\n-this line is not in cursor.py\n+x\n"
    mutant = parse_mutant(_write(tmp_path, stale, "stale"))
    with pytest.raises(ConfigError, match="mutant stale: the patch no longer applies"):
        apply_mutant(mutant, tmp_path / "out")


def test_unknown_only_name_is_an_error() -> None:
    with pytest.raises(ConfigError, match="unknown mutant nope"):
        load_mutants(only=["nope"])


def _junit(tmp_path: Path, cases: str) -> Path:
    path = tmp_path / "junit.xml"
    path.write_text(f"<testsuites><testsuite>{cases}</testsuite></testsuites>")
    return path


M = Mutant("m", "b", "p", ("t",), Path("m.patch"), expect=r"exactly_once: False")
FAILS = '<testcase name="t_ok"/><testcase name="t_bad"><failure message="{}">{}</failure></testcase>'


def test_a_kill_is_a_failure_for_the_expected_reason(tmp_path: Path) -> None:
    expected = _junit(tmp_path, FAILS.format("AssertionError: exactly_once: False: {}", "E  assert ..."))
    assert (_verdict(M, 1, expected, "", 1.0).verdict, _verdict(M, 1, expected, "", 1.0).killed_by) == ("killed", "t_bad")
    in_text = _junit(tmp_path, FAILS.format("assert False", "E   AssertionError: exactly_once: False: {}"))
    assert _verdict(M, 1, in_text, "", 1.0).verdict == "killed"  # the traceback's failing lines are searched too


def test_an_assertion_listed_in_the_source_but_not_failing_is_not_the_cause(tmp_path: Path) -> None:
    text = ("    def test_x():\n        assert verdicts['exactly_once: False'] is None\n"
            ">       assert got == [1, 2]\nE       assert [1] == [1, 2]")
    result = _verdict(M, 1, _junit(tmp_path, FAILS.format("assert [1] == [1, 2]", text)), "", 1.0)
    assert result.verdict == "wrong_kill"


@pytest.mark.parametrize("message", ["WaitTimeout: the outbox did not converge in 30 s", "KeyError: 'seq'",
                                     "AssertionError: assert 'x-accel-buffering' in headers"])
def test_a_failure_for_another_reason_is_a_wrong_kill(tmp_path: Path, message: str) -> None:
    result = _verdict(M, 1, _junit(tmp_path, FAILS.format(message, "")), "", 1.0)
    assert (result.verdict, result.killed_by, result.detail) == ("wrong_kill", "t_bad", message)


@pytest.mark.parametrize("case", [
    '<testcase name="t"><error message="could not start the stack-logs: port"/></testcase>',
    # stack_factory's start fails inside the test body: a junit failure, still not a kill
    '<testcase name="t"><failure message="Failed: could not start the factory-stack-logs: exactly_once: False"/>'
    '</testcase>',
])
def test_a_stack_that_could_not_start_is_an_error_not_a_kill(tmp_path: Path, case: str) -> None:
    assert _verdict(M, 1, _junit(tmp_path, case), "", 1.0).verdict == "error"


def test_survived_and_errors(tmp_path: Path) -> None:
    passed = _junit(tmp_path, '<testcase name="t"/>')
    assert _verdict(M, 0, passed, "", 1.0).verdict == "survived"
    assert _verdict(M, 2, passed, "interrupted", 1.0).verdict == "error"
    assert _verdict(M, 5, passed, "", 1.0).verdict == "error"


@pytest.mark.parametrize(("runs", "verdict", "ran"), [
    (["killed", "killed"], "killed", ("killed", "killed")),
    (["killed", "survived"], "flaky_kill", ("killed", "survived")),
    (["killed", "wrong_kill"], "wrong_kill", ("killed", "wrong_kill")),
    (["wrong_kill", "killed"], "wrong_kill", ("wrong_kill",)),  # the first bad run decides; no second run
    (["survived", "killed"], "survived", ("survived",)),
    (["killed", "error"], "error", ("killed", "error")),
])
def test_a_kill_must_reproduce_in_every_run(monkeypatch: pytest.MonkeyPatch, runs: list[str], verdict: str,
                                            ran: tuple[str, ...]) -> None:
    queue = iter(runs)

    def once(mutant: Mutant, **_: object) -> MutantResult:
        v = next(queue)
        return MutantResult(mutant.name, v, "t_bad" if "kill" in v else None, 1.0, f"{v} detail")

    monkeypatch.setattr(mutants_module, "_run_once", once)
    result = run_mutant(M, runs=2)
    assert (result.verdict, result.runs, result.expected) == (verdict, ran, M.expect)


def test_the_control_must_pass_every_run(monkeypatch: pytest.MonkeyPatch) -> None:
    queue = iter(["survived", "killed"])
    monkeypatch.setattr(mutants_module, "_run_once",
                        lambda mutant, **_: MutantResult(mutant.name, next(queue), None, 1.0, ""))
    control = mutants_module.control([M])
    assert run_mutant(control, runs=2).verdict == "killed"  # the reference failed its run 2: not a pass


@pytest.mark.parametrize(("details", "verdict", "ran"), [
    (["setup error: could not start the stack-logs: api-0 exited", "killed"], "killed", ("killed",)),
    (["setup error: could not start the stack-logs", "setup error: could not start the stack-logs"], "error",
     ("error",)),  # once more only: a stack that never starts is an error
])
def test_a_stack_that_did_not_start_is_run_once_more(monkeypatch: pytest.MonkeyPatch, details: list[str],
                                                     verdict: str, ran: tuple[str, ...]) -> None:
    queue = iter(details)

    def once(mutant: Mutant, **_: object) -> MutantResult:
        detail = next(queue)
        v = "killed" if detail == "killed" else "error"
        return MutantResult(mutant.name, v, "t_bad" if v == "killed" else None, 1.0, detail)

    monkeypatch.setattr(mutants_module, "_run_once", once)
    result = run_mutant(M, runs=1)
    assert (result.verdict, result.runs) == (verdict, ran)
