"""nginx in front of the API, for the proxy-buffering scenarios.

Two modes: BUFFERED keeps nginx's defaults (`proxy_http_version 1.0`, `proxy_buffering on`), which
holds SSE frames until a buffer fills unless the service sends `X-Accel-Buffering: no`; ON is the
configuration an SSE deployment should have. nginx runs with its own config, pid file, error log
(`-e`, so it never touches /var/log/nginx), temp paths, in the foreground under our process group.
"""

from __future__ import annotations

import dataclasses
import enum
import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from harness.errors import NginxError, ToolMissingError, WaitTimeout
from harness.stack.janitor import Janitor, get_janitor
from harness.stack.ports import LOOPBACK, free_port, port_is_open
from harness.stack.processes import ManagedProcess, ProcessSpec, group_members
from harness.stack.waiting import wait_until

__all__ = ["Nginx", "NginxConfig", "NginxMode", "find_nginx", "render_config"]


class NginxMode(str, enum.Enum):
    OFF = "off"  # no nginx: the "sse" proxy points at the API
    ON = "on"  # nginx configured for SSE: buffering off, HTTP/1.1 upstream
    BUFFERED = "buffered"  # nginx's defaults: the incident's configuration


@dataclass(frozen=True)
class NginxConfig:
    listen_port: int
    upstream_ports: tuple[int, ...]
    mode: NginxMode
    work_dir: Path
    run_as_root: bool = False


_UNBUFFERED = """\
      proxy_buffering off;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_read_timeout 3600s;
      proxy_cache off;
"""


def render_config(cfg: NginxConfig) -> str:
    """The whole nginx.conf; every path points inside `work_dir` so runs never collide."""
    if cfg.mode is NginxMode.OFF:
        raise NginxError("nginx mode is off: there is no config to render")
    servers = "".join(f"    server {LOOPBACK}:{port};\n" for port in cfg.upstream_ports)
    tmp = cfg.work_dir / "tmp"
    proxying = _UNBUFFERED if cfg.mode is NginxMode.ON else "      # nginx defaults: HTTP/1.0, buffering on\n"
    return f"""\
{"user root;" if cfg.run_as_root else "# not root: runs as the current user"}
daemon off;
master_process on;
worker_processes 1;
pid {cfg.work_dir / "nginx.pid"};
error_log {cfg.work_dir / "error.log"} info;
events {{ worker_connections 4096; }}
http {{
  access_log {cfg.work_dir / "access.log"};
  client_body_temp_path {tmp / "client_body"};
  proxy_temp_path {tmp / "proxy"};
  fastcgi_temp_path {tmp / "fastcgi"};
  uwsgi_temp_path {tmp / "uwsgi"};
  scgi_temp_path {tmp / "scgi"};
  upstream api {{
{servers}  }}
  server {{
    listen {LOOPBACK}:{cfg.listen_port};
    location / {{
      proxy_pass http://api;
      proxy_set_header Host $host;
{proxying}    }}
  }}
}}
"""


def find_nginx() -> Path:
    for candidate in (shutil.which("nginx"), "/usr/sbin/nginx"):
        if candidate and os.access(candidate, os.X_OK):
            return Path(candidate)
    raise ToolMissingError("nginx is not installed: `apt-get install -y nginx` (or run with --nginx off)")


class Nginx:
    """nginx owned by the harness, listening on its own free port."""

    def __init__(self, upstream_ports: tuple[int, ...], mode: NginxMode, logs_dir: Path, *,
                 janitor: Janitor | None = None) -> None:
        self._janitor = janitor or get_janitor()
        self.work_dir = Path(tempfile.mkdtemp(prefix="harness-nginx-"))
        self._janitor.track_dir(self.work_dir)
        self.config = NginxConfig(free_port(), upstream_ports, mode, self.work_dir, os.geteuid() == 0)
        self.logs_dir = logs_dir
        self.process: ManagedProcess | None = None
        self._argv: tuple[str, ...] = ()

    @property
    def port(self) -> int:
        return self.config.listen_port

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def write_config(self) -> Path:
        for sub in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
            (self.work_dir / "tmp" / sub).mkdir(parents=True, exist_ok=True)
        path = self.work_dir / "nginx.conf"
        path.write_text(render_config(self.config))
        return path

    def start(self) -> None:
        binary = find_nginx()
        conf = self.write_config()
        argv = self._argv = (str(binary), "-c", str(conf), "-p", str(self.work_dir),
                             "-e", str(self.work_dir / "error.log"))
        self._check(argv)
        spec = ProcessSpec(name="nginx", argv=argv, log_path=self.logs_dir / "nginx.log",
                           extra={"role": "nginx", "url": self.url})  # SIGTERM: nginx's fast shutdown
        self.process = self._janitor.spawn(spec)
        try:
            wait_until(self._listening, 10.0, f"nginx on {self.url}")
        except WaitTimeout as exc:
            raise NginxError(f"{exc}; error log:\n{self._error_log()}") from exc

    def reload(self, mode: NginxMode) -> None:
        """Switch `mode` live: the new config checked, SIGHUP to the master (only: a worker would take it
        as an error), and back once a worker of the new config runs. Open connections stay on the old
        workers until they close; new ones get the new mode."""
        if self.process is None or self.process.pid is None or not self.process.running:
            raise NginxError("nginx is not running: nothing to reload")
        master = self.process.pid
        before = set(group_members(master))
        self.config = dataclasses.replace(self.config, mode=mode)
        self.write_config()
        self._check(self._argv)
        os.kill(master, signal.SIGHUP)
        try:
            wait_until(lambda: bool(set(group_members(master)) - before), 10.0, "nginx to reload its config")
        except WaitTimeout as exc:
            raise NginxError(f"{exc}; error log:\n{self._error_log()}") from exc

    def _check(self, argv: tuple[str, ...]) -> None:
        """`nginx -t` first: a config error becomes a clear message instead of a dead process."""
        result = subprocess.run([*argv, "-t", "-q"], capture_output=True, text=True)
        if result.returncode != 0:
            raise NginxError(f"nginx rejected its generated config {argv[2]}: {result.stderr.strip()}")

    def _listening(self) -> bool:
        assert self.process is not None
        if not self.process.running:
            raise NginxError(f"nginx exited with {self.process.returncode}")
        return port_is_open(self.port)

    def _error_log(self) -> str:
        try:
            return (self.work_dir / "error.log").read_text()[-2000:]
        except OSError:
            return ""

    def stop(self) -> None:
        if self.process:
            self.process.stop()
        log = self.work_dir / "error.log"
        if log.exists():  # keep nginx's own log with the others for the post-mortem
            shutil.copy(log, self.logs_dir / "nginx-error.log")
        shutil.rmtree(self.work_dir, ignore_errors=True)
        self._janitor.untrack_dir(self.work_dir)
