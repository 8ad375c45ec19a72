"""The command line as one tool: help panels, metavars, `--version`, one error style, durations, cheap checks
before any connection, old spellings. In-process (`harness.cli.main`, typer's CliRunner) or as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from importlib.metadata import version

import pytest
import typer
from typer.main import get_command
from typer.testing import CliRunner

from harness.cli import app, main, new_spellings
from harness.commands.help_style import EXIT_CODES
from harness.commands.options import Duration, duration

WIDE = {"COLUMNS": "200", "TERMINAL_WIDTH": "200"}
BOXES = "│╭╰─"


def run_main(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """`harness ARGS` in-process: main always ends in sys.exit, with the code of the exit-code table."""
    with pytest.raises(SystemExit) as ended:
        main([*args])
    return int(ended.value.code or 0), *capsys.readouterr()


def command_paths(command: object, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every command of the app, groups included, as the words that name it."""
    subcommands = getattr(command, "commands", {})
    return [path, *(p for name, sub in subcommands.items() for p in command_paths(sub, (*path, name)))]


def test_version_is_the_package_metadata() -> None:
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output.strip() == f"harness {version('outbox-sse-harness')}"


def test_help_groups_commands_in_panels() -> None:
    out = CliRunner().invoke(app, ["--help"], env=WIDE).output
    for panel in ("Stack", "Test and verify", "Runbook", "Recovery", "Load"):
        assert f"─ {panel} ─" in out, out
    assert "─ Commands ─" not in out  # every command has a panel: its own (rich_help_panel=) or from PANELS


def test_every_help_has_metavars_not_types_and_the_exit_codes() -> None:
    runner = CliRunner()
    paths = command_paths(get_command(app))
    assert len(paths) > 30
    leaves = [p for p in paths if p and not any(q[:len(p)] == p and q != p for q in paths)]
    for path in paths:
        result = runner.invoke(app, [*path, "--help"], env=WIDE)
        assert result.exit_code == 0, (path, result.output)
        usage = next(line for line in result.output.splitlines() if "Usage:" in line)
        assert "<bool>" not in result.output and "{" not in usage, (path, result.output)
        arguments = usage.partition("[OPTIONS]")[2]
        assert arguments == arguments.upper(), usage  # RUN_ID, [PYTEST_ARGS]..., COMMAND [ARGS]...
        if path in leaves:
            assert " ".join(EXIT_CODES.split()) in " ".join(result.output.split()), path
    diagnose = runner.invoke(app, ["diagnose", "--help"], env=WIDE).output
    assert "harness diagnose [OPTIONS] RUN_ID" in diagnose and "--dsn" in diagnose and "DSN" in diagnose


def test_a_piped_usage_error_is_one_line_without_boxes() -> None:
    result = subprocess.run([sys.executable, "-m", "harness.cli", "diagnose"], capture_output=True, text=True,
                            timeout=60, env={**os.environ, **WIDE})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == "harness: error: Missing argument 'RUN_ID'; see 'harness diagnose --help'\n"
    assert not set(result.stderr) & set(BOXES)


@pytest.mark.parametrize("args,named", [
    (("lag", "--since", "soon", "--logs", "."), "--since"),
    (("nosuch",), "nosuch"),
    (("up", "--nginx", "sometimes"), "--nginx"),
    (("runbook-check", "no-such-runbook.md"), "no-such-runbook.md"),
])
def test_usage_errors_share_the_one_line_style(capsys: pytest.CaptureFixture[str], args: tuple[str, ...],
                                               named: str) -> None:
    code, out, err = run_main(capsys, *args)
    assert code == 2 and out == "", (args, out, err)
    assert err.startswith("harness: error: ") and named in err and len(err.strip().splitlines()) == 1, err
    assert not set(err) & set(BOXES) and "Traceback" not in err


def test_a_bad_run_id_is_refused_before_any_connection(capsys: pytest.CaptureFixture[str]) -> None:
    closed = "postgresql://nobody@127.0.0.1:1/x"  # nothing listens: a connection attempt would be the error
    for args in (("diagnose", "<runId>"), ("recover", "cancel-run", "a run", "--confirm"), ("lag", "--run", "x'y")):
        started = time.monotonic()
        code, _, err = run_main(capsys, *args, *(("--dsn", closed) if args[0] != "lag" else ("--logs", ".")))
        assert code == 2 and time.monotonic() - started < 1.0, err
        assert "is not a run id" in err and "connect" not in err, err


@pytest.mark.parametrize("text,seconds", [("30s", 30.0), ("250ms", 0.25), ("5m", 300.0), ("1h", 3600.0),
                                          ("2", 2.0)])
def test_durations_parse_one_way(text: str, seconds: float) -> None:
    assert duration(text) == seconds and type(duration(text)) is float
    assert duration(Duration(text)) == seconds and type(duration(Duration(text))) is float


def test_a_duration_default_shows_as_written() -> None:
    assert "[default: 30s]" in CliRunner().invoke(app, ["down", "--help"], env=WIDE).output


def test_a_bad_duration_is_a_usage_error_naming_the_option(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(typer.BadParameter, match="30s, 5m, 1h or 250ms"):
        duration("soon")
    code, _, err = run_main(capsys, "down", "--timeout", "30 seconds")
    assert code == 2 and "'--timeout'" in err and err.startswith("harness: error:"), err


def test_old_spellings_still_work_but_only_before_the_pytest_args() -> None:
    assert new_spellings(["up", "--postgres-dsn", "postgresql://x", "--logs-dir=d"]) == \
        ["up", "--dsn", "postgresql://x", "--logs=d"]
    assert new_spellings(["run", "--", "--logs-dir"]) == ["run", "--", "--logs-dir"]
