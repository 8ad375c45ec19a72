"""How the generator benchmark maps an offered frame rate onto the locustfile's users and the replay server."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.bench.generator import READERS_PER_RUN, GeneratorParams, locust_argv, stream_plan
from harness.cli import main


def params(frames: float, streams: int, processes: int = 1) -> GeneratorParams:
    return GeneratorParams(Path("scenarios/locustfile.py"), frames, streams, duration_s=30.0, warmup_s=5.0,
                           processes=processes)


@pytest.mark.parametrize("frames, streams", [(20_000, 100), (5_000, 20), (1_000, 3), (50_000, 400)])
def test_the_streams_share_the_offered_rate_and_each_has_a_writer_share(frames: float, streams: int) -> None:
    plan = stream_plan(params(frames, streams))
    assert plan.streams >= streams and plan.streams % READERS_PER_RUN == 0
    assert plan.per_run_rate * plan.streams == pytest.approx(frames)
    assert plan.users == plan.streams + plan.streams // READERS_PER_RUN  # Streams weight 4, ScriptedRuns 1
    assert plan.events >= plan.per_run_rate * (5.0 + 30.0)  # no run ends inside the measurement


def test_the_locust_command_runs_writers_and_streams_headless_against_the_server(tmp_path: Path) -> None:
    p = params(20_000, 100, processes=2)
    argv = locust_argv(p, stream_plan(p), "http://127.0.0.1:9", tmp_path)
    assert argv[1:3] == ["-m", "locust"] and argv[-2:] == ["ScriptedRuns", "Streams"]
    assert argv[argv.index("--host") + 1] == "http://127.0.0.1:9"
    assert argv[argv.index("--processes") + 1] == "2"
    assert argv[argv.index("--readers-per-run") + 1] == str(READERS_PER_RUN)
    assert "--processes" not in locust_argv(params(1_000, 4), stream_plan(params(1_000, 4)), "http://x", tmp_path)


@pytest.mark.parametrize("extra, message", [((), "no locustfile at"), (("--write", "x.md"), "--write takes")])
def test_bad_input_is_one_line_and_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                          extra: tuple[str, ...], message: str) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["bench", "--only", "generator", "--locustfile", str(tmp_path / "none.py"), *extra])
    err = capsys.readouterr().err
    assert exited.value.code == 2 and len(err.strip().splitlines()) == 1
    assert err.startswith("harness: error:") and message in err and "Traceback" not in err
