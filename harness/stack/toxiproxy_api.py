"""Our one wrapper around toxiproxy's HTTP API, straight over httpx.

Why not toxiproxy-python 0.1.1: it keeps the server's host and port as class attributes (one server
per Python process, while a test may run two stacks), sets no request timeouts (a blocked handler
hangs the harness) and turns no 5xx into an exception. httpx gives all three in a few lines.
API facts this relies on: a `Mozilla/` User-Agent is refused with 403 (so ours is explicit), creating
a toxic answers 200, `POST /reset` re-enables every proxy and removes every toxic, and a handler
blocked for over 25 s answers 503.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Mapping

import httpx

from harness.errors import ToxiproxyError

__all__ = ["ProxyInfo", "Toxic", "ToxiproxyApi"]

Stream = Literal["upstream", "downstream"]
_TIMEOUT = httpx.Timeout(30.0, connect=3.0)  # above the server's own 25 s handler limit


@dataclass(frozen=True)
class Toxic:
    """One toxic as toxiproxy describes it: its attributes are type-specific (latency, rate, ...)."""

    type: str
    stream: Stream = "downstream"
    toxicity: float = 1.0  # 1.0: deterministic; schedules come from the harness, not from chance
    attributes: Mapping[str, Any] = field(default_factory=dict)
    name: str = ""  # empty: toxiproxy names it `<type>_<stream>`

    def to_json(self) -> dict[str, Any]:
        body: dict[str, Any] = {"type": self.type, "stream": self.stream, "toxicity": self.toxicity,
                                "attributes": dict(self.attributes)}
        if self.name:
            body["name"] = self.name
        return body

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Toxic:
        return cls(type=data["type"], stream=data.get("stream", "downstream"),
                   toxicity=float(data.get("toxicity", 1.0)), attributes=data.get("attributes") or {},
                   name=data.get("name", ""))


@dataclass(frozen=True)
class ProxyInfo:
    name: str
    listen: str
    upstream: str
    enabled: bool
    toxics: tuple[Toxic, ...] = ()

    @property
    def port(self) -> int:
        return int(self.listen.rsplit(":", 1)[1])

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ProxyInfo:
        return cls(name=data["name"], listen=data["listen"], upstream=data["upstream"],
                   enabled=bool(data["enabled"]),
                   toxics=tuple(Toxic.from_json(t) for t in data.get("toxics") or ()))


class ToxiproxyApi:
    """Client of one toxiproxy server; every failure becomes a `ToxiproxyError`."""

    def __init__(self, url: str, *, timeout: httpx.Timeout = _TIMEOUT) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(base_url=self.url, timeout=timeout,
                                  headers={"User-Agent": "outbox-sse-harness"})

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ToxiproxyApi:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _call(self, method: str, path: str, body: Any = None) -> Any:
        try:
            resp = self._http.request(method, path, json=body)
        except httpx.HTTPError as exc:
            raise ToxiproxyError(f"toxiproxy API {method} {self.url}{path} failed: {exc!r};"
                                 " is toxiproxy-server running there?") from exc
        if resp.status_code >= 400:
            raise ToxiproxyError(f"toxiproxy API {method} {path} answered {resp.status_code}:"
                                 f" {resp.text.strip()}", status=resp.status_code)
        if not resp.content:
            return None
        try:
            return resp.json()
        except ValueError:
            return resp.text

    def version(self) -> str:
        data = self._call("GET", "/version")
        # 2.12 answers JSON {"version": ...}; older servers answer plain text.
        return str(data["version"]) if isinstance(data, dict) else str(data).strip()

    def list_proxies(self) -> dict[str, ProxyInfo]:
        data = self._call("GET", "/proxies") or {}
        return {name: ProxyInfo.from_json(p) for name, p in data.items()}

    def get_proxy(self, name: str) -> ProxyInfo:
        return ProxyInfo.from_json(self._call("GET", f"/proxies/{name}"))

    def create_proxy(self, name: str, listen: str, upstream: str, *, enabled: bool = True) -> ProxyInfo:
        body = {"name": name, "listen": listen, "upstream": upstream, "enabled": enabled}
        return ProxyInfo.from_json(self._call("POST", "/proxies", body))

    def update_proxy(self, name: str, *, upstream: str | None = None, enabled: bool | None = None) -> ProxyInfo:
        body: dict[str, Any] = {}
        if upstream is not None:
            body["upstream"] = upstream
        if enabled is not None:
            body["enabled"] = enabled
        return ProxyInfo.from_json(self._call("POST", f"/proxies/{name}", body))

    def enable(self, name: str) -> ProxyInfo:
        return self.update_proxy(name, enabled=True)

    def disable(self, name: str) -> ProxyInfo:
        """Refuse new connections and close the open ones (a hard partition of this link)."""
        return self.update_proxy(name, enabled=False)

    def delete_proxy(self, name: str) -> None:
        self._call("DELETE", f"/proxies/{name}")

    def add_toxic(self, proxy: str, toxic: Toxic) -> Toxic:
        return Toxic.from_json(self._call("POST", f"/proxies/{proxy}/toxics", toxic.to_json()))

    def list_toxics(self, proxy: str) -> list[Toxic]:
        return [Toxic.from_json(t) for t in self._call("GET", f"/proxies/{proxy}/toxics") or ()]

    def remove_toxic(self, proxy: str, toxic_name: str) -> None:
        self._call("DELETE", f"/proxies/{proxy}/toxics/{toxic_name}")

    def reset(self) -> None:
        """Re-enable every proxy and remove every toxic (the final heal)."""
        self._call("POST", "/reset")
