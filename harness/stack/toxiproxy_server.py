"""The toxiproxy server: a binary of ours (found or installed with `go install`), or an existing one.

`go install .../cmd/server@v2.12.0` names the binary `server` and, without the -ldflags below, makes
`/version` answer `git`; both are fixed here so a later run only checks the version.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Protocol

from harness.errors import ToolMissingError, ToxiproxyError, WaitTimeout
from harness.stack.janitor import Janitor, get_janitor
from harness.stack.paths import tools_bin_dir
from harness.stack.ports import LOOPBACK, free_port
from harness.stack.processes import ManagedProcess, ProcessSpec
from harness.stack.toxiproxy_api import ToxiproxyApi
from harness.stack.waiting import wait_until

__all__ = ["ExternalToxiproxy", "LocalToxiproxy", "ToxiproxyServer", "find_or_install", "make_toxiproxy"]

VERSION = "2.12.0"
MODULE = "github.com/Shopify/toxiproxy/v2"
BINARY = "toxiproxy-server"


class ToxiproxyServer(Protocol):
    url: str

    @property
    def owned(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def api(self) -> ToxiproxyApi: ...


def install_command(bin_dir: Path) -> list[str]:
    return ["go", "install", "-ldflags", f"-X {MODULE}.Version={VERSION}", f"{MODULE}/cmd/server@v{VERSION}"]


def find_or_install(bin_dir: Path | None = None) -> Path:
    """`toxiproxy-server` from PATH or the tool folder; else `go install` it into the tool folder."""
    bin_dir = bin_dir or tools_bin_dir()
    for candidate in (shutil.which(BINARY), bin_dir / BINARY):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return Path(candidate)
    return _go_install(bin_dir)


def _go_install(bin_dir: Path) -> Path:
    cmd = install_command(bin_dir)
    shown = f"GOBIN={bin_dir} {' '.join(cmd[:3])} \"{cmd[3]}\" {cmd[4]}"
    if shutil.which("go") is None:
        raise ToolMissingError(f"{BINARY} is not on PATH nor in {bin_dir}, and Go is not installed to build it:"
                               f" install Go and run `{shown}`, then rename server -> {BINARY};"
                               " or set TOXIPROXY_URL to a running server")
    bin_dir.mkdir(parents=True, exist_ok=True)
    try:
        subprocess.run(cmd, check=True, capture_output=True, text=True, timeout=600,
                       env={**os.environ, "GOBIN": str(bin_dir)})
    except (OSError, subprocess.SubprocessError) as exc:
        output = (getattr(exc, "stderr", "") or "").strip()
        raise ToolMissingError(f"`{shown}` failed: {exc} {output}") from exc
    (bin_dir / "server").replace(bin_dir / BINARY)
    return bin_dir / BINARY


def check_version(api: ToxiproxyApi) -> None:
    version = api.version()
    if version != VERSION:
        raise ToxiproxyError(f"toxiproxy at {api.url} is version {version!r}, the harness needs {VERSION}:"
                             f" reinstall with `{' '.join(install_command(tools_bin_dir()))}`")


class LocalToxiproxy:
    """A toxiproxy server started and owned by the harness."""

    owned = True

    def __init__(self, logs_dir: Path, *, janitor: Janitor | None = None, binary: Path | None = None) -> None:
        self.logs_dir = logs_dir
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self._binary = binary
        self._janitor = janitor or get_janitor()
        self.process: ManagedProcess | None = None

    def start(self) -> None:
        binary = self._binary or find_or_install()
        spec = ProcessSpec(name="toxiproxy", argv=(str(binary), "-host", LOOPBACK, "-port", str(self.port)),
                           log_path=self.logs_dir / "toxiproxy.log", extra={"role": "toxiproxy", "url": self.url})
        self.process = self._janitor.spawn(spec)
        with self.api() as api:
            try:
                wait_until(lambda: self._answers(api), 10.0, f"toxiproxy API on {self.url}")
            except WaitTimeout as exc:
                raise ToxiproxyError(f"{exc}; log:\n{self.process.tail()}") from exc
            check_version(api)

    def _answers(self, api: ToxiproxyApi) -> bool:
        assert self.process is not None
        if not self.process.running:
            raise ToxiproxyError(f"toxiproxy-server exited with {self.process.returncode}")
        return bool(api.version())

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def api(self) -> ToxiproxyApi:
        return ToxiproxyApi(self.url)


class ExternalToxiproxy:
    """An existing server (`TOXIPROXY_URL`): we create and delete only our own proxies on it."""

    owned = False

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def start(self) -> None:
        with self.api() as api:
            check_version(api)

    def stop(self) -> None:
        """Not ours to stop."""

    def api(self) -> ToxiproxyApi:
        return ToxiproxyApi(self.url)


def make_toxiproxy(url: str | None, logs_dir: Path) -> ToxiproxyServer:
    return ExternalToxiproxy(url) if url else LocalToxiproxy(logs_dir)
