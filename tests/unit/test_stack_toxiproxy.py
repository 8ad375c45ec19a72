"""The real toxiproxy server driven through our API wrapper, in front of a local TCP echo server."""

from __future__ import annotations

import socket
import socketserver
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.errors import ToxiproxyError
from harness.stack.toxiproxy_api import Toxic, ToxiproxyApi
from harness.stack.toxiproxy_server import LocalToxiproxy, find_or_install

from stack_helpers import assert_gone, isolated_state_dir  # noqa: F401 (autouse)


class Echo(socketserver.BaseRequestHandler):
    def handle(self) -> None:
        while data := self.request.recv(4096):
            self.request.sendall(data)


@pytest.fixture(scope="module")
def echo_port() -> Iterator[int]:
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Echo)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalToxiproxy]:
    tp = LocalToxiproxy(tmp_path_factory.mktemp("toxiproxy"))
    tp.start()
    yield tp
    tp.stop()
    assert tp.process is not None and tp.process.pid is not None
    assert_gone(tp.process.pid)


@pytest.fixture
def api(server: LocalToxiproxy) -> Iterator[ToxiproxyApi]:
    with server.api() as client:
        yield client
        for name in client.list_proxies():
            client.delete_proxy(name)


def roundtrip(port: int, payload: bytes = b"ping", timeout: float = 3.0) -> tuple[bytes, float]:
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(payload)
        data = sock.recv(4096)
    return data, time.monotonic() - started


def test_binary_is_found_and_reports_its_version(api: ToxiproxyApi) -> None:
    assert find_or_install().name == "toxiproxy-server"
    assert api.version() == "2.12.0"


def test_proxy_with_latency_toxic(api: ToxiproxyApi, echo_port: int) -> None:
    proxy = api.create_proxy("echo", "127.0.0.1:0", f"127.0.0.1:{echo_port}")
    assert roundtrip(proxy.port)[0] == b"ping"
    toxic = api.add_toxic("echo", Toxic("latency", "downstream", attributes={"latency": 300}))
    assert toxic.name == "latency_downstream" and toxic.attributes["latency"] == 300
    data, took = roundtrip(proxy.port)
    assert data == b"ping" and took >= 0.3
    api.remove_toxic("echo", toxic.name)
    assert api.list_toxics("echo") == []
    assert roundtrip(proxy.port)[1] < 0.3


def test_disable_refuses_and_reset_heals(api: ToxiproxyApi, echo_port: int) -> None:
    proxy = api.create_proxy("echo", "127.0.0.1:0", f"127.0.0.1:{echo_port}")
    api.add_toxic("echo", Toxic("timeout", "upstream", attributes={"timeout": 0}, name="blackhole"))
    api.disable("echo")
    assert api.get_proxy("echo").enabled is False
    with pytest.raises(OSError):
        roundtrip(proxy.port, timeout=1.0)
    api.reset()  # re-enables every proxy and removes every toxic
    healed = api.get_proxy("echo")
    assert healed.enabled and healed.toxics == ()
    assert roundtrip(proxy.port)[0] == b"ping"


def test_api_errors_are_toxiproxy_errors(api: ToxiproxyApi, echo_port: int) -> None:
    api.create_proxy("echo", "127.0.0.1:0", f"127.0.0.1:{echo_port}")
    with pytest.raises(ToxiproxyError) as exists:
        api.create_proxy("echo", "127.0.0.1:0", f"127.0.0.1:{echo_port}")
    assert exists.value.status == 409
    with pytest.raises(ToxiproxyError, match="404"):
        api.delete_proxy("nope")
    with pytest.raises(ToxiproxyError) as bad:
        api.add_toxic("echo", Toxic("no-such-toxic"))
    assert bad.value.status == 400


def test_unreachable_server_is_a_toxiproxy_error(tmp_path: Path) -> None:
    from harness.stack.ports import free_port

    with ToxiproxyApi(f"http://127.0.0.1:{free_port()}") as nobody:
        with pytest.raises(ToxiproxyError, match="is toxiproxy-server running there"):
            nobody.list_proxies()


def test_missing_go_names_the_install_command(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from harness.errors import ToolMissingError

    monkeypatch.setenv("PATH", str(tmp_path))  # neither toxiproxy-server nor go
    with pytest.raises(ToolMissingError, match=r"go install -ldflags .*cmd/server@v2.12.0"):
        find_or_install(tmp_path / "bin")
