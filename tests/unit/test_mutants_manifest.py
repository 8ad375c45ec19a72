"""The mutants' manifests parse and every patch (also the pending ones) still applies to reference_impl/."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.mutants import MUTANTS_DIR, Mutant, _verdict, apply_mutant, load_mutants, parse_mutant

pytestmark = pytest.mark.skipif(shutil.which("patch") is None, reason="needs the patch program")

ALL = sorted(MUTANTS_DIR.glob("*.patch")) + sorted((MUTANTS_DIR / "pending").glob("*.patch"))


def test_there_are_mutants_and_each_names_its_scenarios() -> None:
    mutants = load_mutants()
    assert len(mutants) >= 5
    scenarios = "".join(p.read_text() for p in (Path(__file__).resolve().parents[2] / "scenarios").glob("test_*.py"))
    for m in mutants:
        assert m.bug and m.pattern and m.scenarios
        assert all(f"def {s}" in scenarios or s in scenarios for s in m.scenarios), m.name


@pytest.mark.parametrize("patch", ALL, ids=lambda p: p.stem)
def test_every_patch_applies_cleanly_and_changes_the_service(patch: Path, tmp_path: Path) -> None:
    mutant = parse_mutant(patch, require_scenario=patch.parent == MUTANTS_DIR)
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


@pytest.mark.parametrize(("header", "message"), [
    ("# pattern: p\n# scenario: t\n", "exactly one '# bug:'"),
    ("# bug: b\n# pattern: p\n", "names no '# scenario:'"),
    ("# bug: b\n# pattern: p\n# scenario: t\n# colour: red\n", "expected '# bug|pattern|scenario|needs: text'"),
    ("# bug: b\n# pattern: p\n# scenario: t\nstray line\n", "neither a '#' comment nor the diff"),
])
def test_a_malformed_manifest_is_a_clear_error_naming_the_mutant(tmp_path: Path, header: str, message: str) -> None:
    with pytest.raises(ConfigError, match=r"mutant broken:.*") as info:
        parse_mutant(_write(tmp_path, header + DIFF, "broken"))
    assert message in str(info.value)


def test_a_file_without_a_diff_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="mutant empty: .* no unified diff"):
        parse_mutant(_write(tmp_path, "# bug: b\n# pattern: p\n# scenario: t\n", "empty"))


def test_a_patch_that_no_longer_applies_is_an_error_naming_the_mutant(tmp_path: Path) -> None:
    stale = "# bug: b\n# pattern: p\n# scenario: t\n--- a/reference_impl/cursor.py\n+++ b/reference_impl/cursor.py\n" \
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


M = Mutant("m", "b", "p", ("t",), Path("m.patch"))


def test_verdicts(tmp_path: Path) -> None:
    failed = _junit(tmp_path, '<testcase name="t_ok"/><testcase name="t_bad"><failure message="assert 1 == 2"/></testcase>')
    assert (_verdict(M, 1, failed, "", 1.0).verdict, _verdict(M, 1, failed, "", 1.0).killed_by) == ("killed", "t_bad")
    setup = _junit(tmp_path, '<testcase name="t"><error message="could not start the stack-logs"/></testcase>')
    assert _verdict(M, 1, setup, "", 1.0).verdict == "error"  # a stack that cannot start is not a kill
    passed = _junit(tmp_path, '<testcase name="t"/>')
    assert _verdict(M, 0, passed, "", 1.0).verdict == "survived"
    assert _verdict(M, 2, passed, "interrupted", 1.0).verdict == "error"
    assert _verdict(M, 5, passed, "", 1.0).verdict == "error"
