"""No silent skips: a test that needs a missing tool is skipped on a developer's machine, but fails
(a setup error, before any stack starts: the run is red) naming what to install when `CI` is set or
with `--strict-tools`; a test that does not need the tool runs either way."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.pytest_plugin import require_tool

pytest_plugins = ["pytester"]

MODULE = '''
import pytest

@pytest.mark.tool("patch")
def test_needs_patch():
    pass

def test_needs_nothing():
    pass
'''


@pytest.fixture
def no_tools(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no patch, no promtool on PATH
    monkeypatch.delenv("CI", raising=False)


@pytest.mark.usefixtures("no_tools")
def test_a_missing_tool_skips_without_ci() -> None:
    with pytest.raises(pytest.skip.Exception, match="patch is not installed: apt-get install patch"):
        require_tool("patch", strict=False)


@pytest.mark.usefixtures("no_tools")
def test_a_missing_tool_fails_when_strict() -> None:
    with pytest.raises(pytest.fail.Exception, match="patch is not installed: apt-get install patch.*failing, not skipping"):
        require_tool("patch", strict=True)


@pytest.mark.usefixtures("no_tools")
@pytest.mark.parametrize(("ci", "args", "outcome"), [
    (None, (), {"passed": 1, "skipped": 1}),
    ("true", (), {"passed": 1, "errors": 1}),
    (None, ("--strict-tools",), {"passed": 1, "errors": 1}),
    ("false", (), {"passed": 1, "skipped": 1}),
])
def test_ci_turns_the_skip_into_a_failure_of_only_the_test_that_needs_the_tool(
        pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, ci: str | None, args: tuple[str, ...],
        outcome: dict[str, int]) -> None:
    if ci is not None:
        monkeypatch.setenv("CI", ci)
    pytester.makepyfile(test_tool=MODULE)
    result = pytester.runpytest_inprocess("-p", "harness.pytest_plugin", *args)
    result.assert_outcomes(**outcome)
    assert result.ret == (0 if "skipped" in outcome else 1)
    if "errors" in outcome:
        result.stdout.fnmatch_lines(["*patch is not installed: apt-get install patch*failing, not skipping*"])
