"""nginx config generation for both modes, and a real nginx in front of a tiny HTTP server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from harness.errors import NginxError
from harness.stack.nginx import Nginx, NginxConfig, NginxMode, render_config

from stack_helpers import assert_gone, isolated_state_dir  # noqa: F401 (autouse)


def config(mode: NginxMode, tmp_path: Path) -> str:
    return render_config(NginxConfig(8080, (9001, 9002), mode, tmp_path, run_as_root=True))


def test_buffered_mode_keeps_nginx_defaults(tmp_path: Path) -> None:
    text = config(NginxMode.BUFFERED, tmp_path)
    assert "proxy_buffering" not in text and "proxy_http_version" not in text
    assert "user root;" in text and "daemon off;" in text
    assert "server 127.0.0.1:9001;" in text and "server 127.0.0.1:9002;" in text
    assert f"pid {tmp_path / 'nginx.pid'};" in text and f"proxy_temp_path {tmp_path / 'tmp' / 'proxy'};" in text


def test_on_mode_is_configured_for_sse(tmp_path: Path) -> None:
    text = config(NginxMode.ON, tmp_path)
    for line in ("proxy_buffering off;", "proxy_http_version 1.1;", "proxy_read_timeout 3600s;", "proxy_cache off;"):
        assert line in text


def test_off_mode_has_no_config(tmp_path: Path) -> None:
    with pytest.raises(NginxError):
        config(NginxMode.OFF, tmp_path)


class Hello(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "5")
        self.end_headers()
        self.wfile.write(b"hello")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def upstream() -> Iterator[int]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Hello)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.mark.nginx
@pytest.mark.parametrize("mode", [NginxMode.ON, NginxMode.BUFFERED])
def test_real_nginx_proxies_and_stops_clean(mode: NginxMode, upstream: int, tmp_path: Path) -> None:
    nginx = Nginx((upstream,), mode, tmp_path)
    nginx.start()
    try:
        assert httpx.get(f"{nginx.url}/anything").text == "hello"
    finally:
        nginx.stop()
    assert nginx.process is not None and nginx.process.pid is not None
    assert_gone(nginx.process.pid)  # master and worker
    assert not nginx.work_dir.exists()
    assert (tmp_path / "nginx-error.log").exists()
