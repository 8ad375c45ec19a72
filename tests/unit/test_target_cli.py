"""`harness init-profile`: a valid, commented profile to start from; an existing file is never overwritten
unless asked; a bad profile given to `check-profile` is one line and exit 2."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.cli import main
from harness.target import load_profile


def _run(*args: str) -> int:
    try:
        main(list(args))
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


def test_init_profile_writes_a_valid_profile_and_keeps_an_existing_one(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "mine.toml"
    assert _run("init-profile", str(out)) == 0
    profile = load_profile(out)
    assert profile.name == "my-service" and profile.logs.format == "json" and "# " in out.read_text()
    out.write_text("kept")
    assert _run("init-profile", str(out)) == 2 and out.read_text() == "kept"
    assert "--force" in capsys.readouterr().err
    assert _run("init-profile", str(out), "--from-reference", "--force") == 0
    assert load_profile(out).name == "reference"


def test_check_profile_with_a_bad_profile_is_one_line_and_exit_2(tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text('[target]\nname = "x"\n[[process]]\nrole = "api"\ncommand = ["srv"]\n')
    assert _run("check-profile", str(bad)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "the api must listen" in err and "Traceback" not in err
