"""What a started stack offers, as plain data: endpoints, processes, proxies. Written as stack.json."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Mapping

__all__ = ["ProcessInfo", "StackInfo"]


@dataclass(frozen=True)
class ProcessInfo:
    name: str
    role: str
    pid: int | None
    url: str | None
    log: str


@dataclass(frozen=True)
class StackInfo:
    api_url: str  # through the "sse" proxy (and nginx when enabled): what clients use
    api_direct_url: str  # the first API replica, no proxy
    dsn: str  # PostgreSQL directly, never through a proxy: the harness observer's connection
    toxiproxy_url: str
    logs_dir: str
    admin_token: str
    api_direct_urls: tuple[str, ...] = ()  # one per API replica
    nginx_url: str | None = None
    role_dsns: Mapping[str, str] = field(default_factory=dict)  # each role's DSN, through its proxy
    proxies: Mapping[str, str] = field(default_factory=dict)  # logical name ("sse") -> toxiproxy name
    proxy_listen: Mapping[str, str] = field(default_factory=dict)  # logical name -> host:port
    admin_urls: Mapping[str, str] = field(default_factory=dict)  # worker name -> ops URL
    processes: tuple[ProcessInfo, ...] = ()
    owner_pid: int | None = None  # the harness process that owns the stack
    control_url: str | None = None  # the owner's control channel (harness/control), loopback only
    control_token: str | None = None  # its bearer token: stack.json is written mode 0600

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2)

    @classmethod
    def from_json(cls, text: str) -> StackInfo:
        data = json.loads(text)
        data["api_direct_urls"] = tuple(data.get("api_direct_urls", ()))
        data["processes"] = tuple(ProcessInfo(**p) for p in data.get("processes", ()))
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
