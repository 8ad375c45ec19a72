"""Running the `harness` CLI in-process, as a user would see it (shared by the integration tests)."""

from __future__ import annotations

import pytest

from harness.cli import main


def run_cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`harness ARGS`: its exit code, stdout and stderr."""
    capsys.readouterr()
    try:
        main([*args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err
