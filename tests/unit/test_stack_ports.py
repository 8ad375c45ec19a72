"""Listener ports come from below the kernel's ephemeral range, distinct within a call."""
from __future__ import annotations

import socket

import pytest

from harness.stack.ports import LISTENER_FLOOR, LOOPBACK, ephemeral_floor, free_ports


def test_ports_are_distinct_free_and_below_the_ephemeral_range() -> None:
    ports = free_ports(20)
    assert len(set(ports)) == 20
    assert all(LISTENER_FLOOR <= p < ephemeral_floor() for p in ports), ports
    for port in ports:  # each is free to bind right after the call
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.bind((LOOPBACK, port))


def test_a_taken_port_is_skipped(monkeypatch: pytest.MonkeyPatch) -> None:
    taken_port, free_port = free_ports(2)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as taken:
        taken.bind((LOOPBACK, taken_port))
        taken.listen()
        # the random pick tries the taken port first
        monkeypatch.setattr("harness.stack.ports.random.sample", lambda population, k: [taken_port, free_port])
        assert free_ports(1) == [free_port]
