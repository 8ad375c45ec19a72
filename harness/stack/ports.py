"""Free loopback TCP ports for the stack's listeners."""

from __future__ import annotations

import random
import socket
from contextlib import ExitStack
from pathlib import Path

__all__ = ["LOOPBACK", "free_port", "free_ports", "port_is_open"]

LOOPBACK = "127.0.0.1"
LISTENER_FLOOR = 20000  # listeners are chosen from here up to the kernel's ephemeral range
ATTEMPTS = 200


def ephemeral_floor() -> int:
    """The first port the kernel hands out to outgoing connections (ip_local_port_range)."""
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


def free_ports(count: int, host: str = LOOPBACK) -> list[int]:
    """Return `count` distinct ports free right now, below the ephemeral range.

    Below it because a port from that range can be taken between this call and the listener's bind by
    any outgoing connection (the stack's own clients open hundreds), which was seen with two stacks
    starting at once. Each port is bound to prove it free, and held until every port is chosen so
    one call never returns the same port twice; random picks keep two callers apart. With no free
    port below the range (a very small range), the kernel's choice is the fallback.
    """
    ceiling = ephemeral_floor()
    with ExitStack() as stack:
        ports: list[int] = []
        for _ in range(count):
            sock = stack.enter_context(socket.socket(socket.AF_INET, socket.SOCK_STREAM))
            ports.append(_bind_below(sock, host, ceiling))
        return ports


def _bind_below(sock: socket.socket, host: str, ceiling: int) -> int:
    if ceiling > LISTENER_FLOOR:
        for port in random.sample(range(LISTENER_FLOOR, ceiling), min(ATTEMPTS, ceiling - LISTENER_FLOOR)):
            try:
                sock.bind((host, port))
                return port
            except OSError:
                continue
    sock.bind((host, 0))
    return int(sock.getsockname()[1])


def free_port(host: str = LOOPBACK) -> int:
    """Return one free port on `host`."""
    return free_ports(1, host)[0]


def port_is_open(port: int, host: str = LOOPBACK, timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
