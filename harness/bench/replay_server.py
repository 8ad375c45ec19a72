"""The replay-only SSE server (tools/replay_server, Go): built into .tools/bin, started and stopped here.

It serves the stream contract without a database, so a load generator measured against it is limited
by nothing but itself (the server writes well over a million frames/s on one core). Its runs are
`run_id(n)` for n = 1..runs; `POST /api/agents/runs` creates more; `GET /stats` counts frames written.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from harness.errors import StackError, ToolMissingError, WaitTimeout
from harness.stack.janitor import get_janitor
from harness.stack.paths import repo_root, tools_bin_dir
from harness.stack.ports import LOOPBACK, free_port
from harness.stack.processes import ManagedProcess, ProcessSpec
from harness.stack.waiting import wait_until

__all__ = ["BINARY", "ReplayServer", "ReplaySettings", "find_or_build", "replay_server", "run_id"]

BINARY = "replay-server"


def source_dir() -> Path:
    return repo_root() / "tools" / "replay_server"


@dataclass(frozen=True)
class ReplaySettings:
    runs: int = 10
    rate: float = 100.0  # events/s per run; 0: each stream as fast as its socket takes
    events: int = 0  # events per run before RunFinished; 0: endless
    payload_bytes: int = 0
    heartbeat_s: float = 15.0

    def argv(self) -> tuple[str, ...]:
        return ("-runs", str(self.runs), "-rate", repr(self.rate), "-events", str(self.events),
                "-payload-bytes", str(self.payload_bytes), "-heartbeat", f"{self.heartbeat_s}s")


@dataclass(frozen=True)
class ReplayServer:
    url: str
    pid: int
    settings: ReplaySettings

    @property
    def run_ids(self) -> list[str]:
        return [run_id(n) for n in range(1, self.settings.runs + 1)]

    def stats(self) -> dict[str, int]:
        """Frames and bytes written so far, streams open and opened."""
        return dict(httpx.get(f"{self.url}/stats", timeout=5.0).json())


def run_id(n: int) -> str:
    """The id of the server's n-th initial run (n from 1), as main.go names it."""
    return f"00000000-0000-4000-8000-{n:012d}"


def _stale(binary: Path, sources: Path) -> bool:
    if not binary.is_file():
        return True
    built = binary.stat().st_mtime
    return any(path.stat().st_mtime > built for path in sources.iterdir() if path.suffix in (".go", ".mod"))


def find_or_build(bin_dir: Path | None = None) -> Path:
    """`.tools/bin/replay-server`, (re)built with `go build` when missing or older than its source."""
    binary = (bin_dir or tools_bin_dir()) / BINARY
    sources = source_dir()
    if not _stale(binary, sources):
        return binary
    shown = f"cd {sources} && go build -o {binary} ."
    if shutil.which("go") is None:
        raise ToolMissingError(f"{binary} is missing and Go is not installed to build it: install Go and run `{shown}`")
    binary.parent.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(["go", "build", "-o", str(binary), "."], cwd=sources, check=True, capture_output=True,
                       text=True, timeout=300)
    except (OSError, subprocess.SubprocessError) as exc:
        output = (getattr(exc, "stderr", "") or "").strip()
        raise ToolMissingError(f"`{shown}` failed: {exc} {output}") from exc
    return binary


@contextmanager
def replay_server(settings: ReplaySettings, logs_dir: Path) -> Iterator[ReplayServer]:
    """A started replay server on a free loopback port; stopped on leaving (also on an exception)."""
    port = free_port()
    spec = ProcessSpec(name="replay-server", argv=(str(find_or_build()), "-host", LOOPBACK, "-port", str(port),
                                                   *settings.argv()),
                       log_path=logs_dir / "replay-server.log", stop_timeout=5.0)
    proc = get_janitor().spawn(spec)
    try:
        url = f"http://{LOOPBACK}:{port}"
        try:
            wait_until(lambda: _answers(proc, url), 10.0, f"replay server on {url}")
        except WaitTimeout as exc:
            raise StackError(f"{exc}; log:\n{proc.tail()}") from exc
        assert proc.pid is not None
        yield ReplayServer(url, proc.pid, settings)
    finally:
        proc.stop()


def _answers(proc: ManagedProcess, url: str) -> bool:
    if not proc.running:
        raise StackError(f"replay-server exited with {proc.returncode}; log:\n{proc.tail()}")
    return httpx.get(f"{url}/healthz", timeout=1.0).status_code == 200
