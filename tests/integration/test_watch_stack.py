"""`harness watch` in a real terminal (tmux) against a detached stack whose outbox worker is frozen with
`harness fault pause`.

The screen is read as a user sees it: the pause among the faults active now, the run's row with a backlog
that grows and the `outbox_stuck` verdict; Ctrl-C ends the watch with status 0 and no traceback.
`--once --json` is read by a script.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.errors import WaitTimeout
from harness.stack.waiting import wait_until

from cli_helpers import detached_stack, run_harness, stack_info

pytestmark = [pytest.mark.tool("tmux")]
WAIT_S = 20.0


@pytest.fixture
def state(tmp_path: Path) -> Path:
    """This test's own stack state folder."""
    return tmp_path / "state"


@pytest.fixture
def detached(state: Path) -> Iterator[dict[str, Any]]:
    """A detached stack of the reference service (fast intervals) in this test's own state folder."""
    with detached_stack(state, "--fast"):
        yield stack_info(state)
        down = run_harness(state, "down")
        assert down.returncode == 0, down.stderr


@pytest.fixture
def frozen_outbox(detached: dict[str, Any], state: Path) -> Iterator[None]:
    """The outbox worker paused through the stack's owner (`harness fault pause`), resumed before `down`."""
    pause = run_harness(state, "fault", "pause", "outbox-worker-0")
    assert pause.returncode == 0, pause.stderr
    try:
        yield
    finally:
        run_harness(state, "fault", "resume", "outbox-worker-0")


@pytest.fixture
def tmux(tmp_path: Path) -> Iterator[Callable[..., str]]:
    """A private tmux server (its socket in tmp_path); `tmux(args...)` runs one tmux command, returns stdout."""
    conf = tmp_path / "tmux.conf"
    conf.write_text("set -g remain-on-exit on\n")  # keep the pane, and its exit status, after the watch ends
    base = ["tmux", "-S", str(tmp_path / "tmux.sock"), "-f", str(conf)]

    def run(*args: str) -> str:
        return subprocess.run([*base, *args], capture_output=True, text=True, check=True, timeout=10).stdout
    try:
        yield run
    finally:
        subprocess.run([*base, "kill-server"], capture_output=True, timeout=10)


def open_stream(url: str, stop: threading.Event) -> threading.Thread:
    """One SSE client reading the run's stream (heartbeats keep it busy) until `stop`."""
    def read() -> None:
        with httpx.stream("GET", url, timeout=10) as response:
            for _ in response.iter_lines():
                if stop.is_set():
                    return
    thread = threading.Thread(target=read, daemon=True)
    thread.start()
    return thread


def until(condition: Callable[[], Any], what: str, shown: Callable[[], str]) -> Any:
    """The condition's first true value; on timeout, fail with what `shown` says (the screen)."""
    try:
        return wait_until(condition, WAIT_S, what)
    except WaitTimeout as exc:
        raise AssertionError(f"{exc}:\n{shown()}") from None


def showing(screen: str, *texts: str) -> str | None:
    return screen if all(t in screen for t in texts) else None


def backlog_on_screen(screen: str, run_id: str) -> int | None:
    """The backlog cell of the run's row, when the row shows it stuck."""
    row = next((line for line in screen.splitlines() if run_id in line and "outbox_stuck" in line), None)
    if row is None:
        return None
    cells = [c.strip() for c in row.split("│") if c.strip()]
    return int(cells[4])  # run, state, lastSeq, nextSeq, backlog


def test_watch_shows_a_stuck_outbox_live_and_quits_on_ctrl_c(
        detached: dict[str, Any], frozen_outbox: None, tmux: Callable[..., str], state: Path) -> None:
    api = detached["api_url"]
    created = httpx.post(f"{api}/api/agents/runs", json={"script": {"steps": 400, "interval_ms": 25}}, timeout=10)
    run_id = created.json()["runId"]
    stop = threading.Event()
    reader = open_stream(f"{api}/api/agents/runs/{run_id}/stream", stop)
    try:
        # the pane's size, not the COLUMNS / LINES tmux may have inherited, is what rich must lay out to
        # The exit status is written by a shell around the watch (its `trap : INT` only lets it outlive the Ctrl-C
        # to write it; the watch gets SIGINT as usual): after the session stack's tests, the tmux server forked
        # from this pytest left the exited watch a zombie it never reaped, so its pane_dead could not tell.
        status = state.parent / "watch.status"
        watch = shlex.join(["env", "-u", "COLUMNS", "-u", "LINES", sys.executable, "-m", "harness.cli", "watch"])
        tmux("new-session", "-d", "-s", "w", "-x", "170", "-y", "30", "-e", f"HARNESS_STATE_DIR={state}",
             "sh", "-c", f"trap : INT; {watch}; echo $? > {shlex.quote(str(status))}")

        def screen() -> str:
            return tmux("capture-pane", "-p", "-t", "w")

        def backlog_above(floor: int) -> int | None:
            shown = backlog_on_screen(screen(), run_id)
            return shown if shown is not None and shown > floor else None

        def exit_status() -> str | None:
            return status.read_text().strip() or None if status.is_file() else None

        first = until(lambda: backlog_above(0), "the run's row with outbox_stuck", screen)
        later = until(lambda: backlog_above(first), "the backlog on screen to grow", screen)
        shown = until(lambda: showing(screen(), "1 (oldest", "last one"), "the open stream and a heartbeat on screen",
                      screen)
        assert "faults active now" in shown and shown.index("faults active now") < shown.index(run_id)
        fault_row = next(line for line in shown.splitlines() if "outbox-worker-0" in line and run_id not in line)
        assert "pause" in fault_row, shown

        frame = run_harness(state, "watch", "--once", "--json")
        assert frame.returncode == 0, frame.stderr
        [run] = [r for r in json.loads(frame.stdout)["runs"] if r["run_id"] == run_id]
        assert run["verdict"] == "outbox_stuck" and run["next_seq"] == 1 and run["backlog"] >= later
        assert [s["connection_id"] for s in run["streams"]] and not run["healthy"]

        tmux("send-keys", "-t", "w", "C-c")
        assert until(exit_status, "the watch to exit on Ctrl-C", screen) == "0"
        after = screen()
        assert "Traceback" not in after and "Aborted" not in after and run_id in after  # the last frame stays
    finally:
        stop.set()
        reader.join(timeout=5)

    bad = run_harness(state, "watch", "no-such-run", "--once")
    assert bad.returncode == 2 and bad.stderr.strip() == (
        "harness: error: unknown run id 'no-such-run': no row in runs (step 1 of the checklist)")
