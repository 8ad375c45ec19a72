"""A minimal HTTP/1.1 client for loopback load: keep-alive JSON POSTs and SSE streams.

Why not httpx: at thousands of requests or frames per second on a 2-core machine, the client's own
per-request overhead competes with the service for CPU and inflates what we measure. This client
does only what the bench needs: one request at a time per connection, `Content-Length` or chunked
bodies, and the service's SSE framing (`id:`/`event:`/`data:` lines, blank line between frames).
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

__all__ = ["Dechunker", "HttpConn", "SSEStream", "frame_ts_epoch", "split_frames"]

_TS_KEY = b'"ts":"'


def _host_port(base_url: str) -> tuple[str, int]:
    parts = urlsplit(base_url)
    if parts.hostname not in ("127.0.0.1", "localhost", "::1"):
        raise ValueError(f"the bench loads loopback addresses only, got {base_url!r}")
    return parts.hostname, parts.port or 80


class Dechunker:
    """Incremental decoder of `Transfer-Encoding: chunked`: feed raw bytes, get body bytes."""

    def __init__(self) -> None:
        self._buf = bytearray()
        self._need: int | None = None  # bytes left of the current chunk, its CRLF included
        self.done = False

    def feed(self, data: bytes) -> bytes:
        self._buf += data
        out = bytearray()
        while not self.done:
            if self._need is None:
                end = self._buf.find(b"\r\n")
                if end < 0:
                    break
                size = int(bytes(self._buf[:end]).split(b";", 1)[0].strip() or b"0", 16)
                del self._buf[:end + 2]
                if size == 0:
                    self.done = True
                    break
                self._need = size + 2
            if len(self._buf) < self._need:
                break
            out += self._buf[:self._need - 2]
            del self._buf[:self._need]
            self._need = None
        return bytes(out)


def split_frames(buffer: bytearray) -> list[bytes]:
    """Remove and return the complete SSE blocks (ended by a blank line) from the buffer."""
    end = buffer.rfind(b"\n\n")
    if end < 0:
        return []
    done = bytes(buffer[:end])
    del buffer[:end + 2]
    return [block for block in done.split(b"\n\n") if block]


def frame_ts_epoch(block: bytes, cache: dict[bytes, float]) -> float | None:
    """The epoch seconds of the `ts` in a frame's data line; None for a comment or a frame without ts.

    The service writes `data: {"runId":..,"seq":..,"type":..,"ts":"2025-01-02T03:04:05.123456Z",...}`;
    the same ts is seen by every stream of a run, hence the cache.
    """
    start = block.find(_TS_KEY)
    if start < 0:
        return None
    start += len(_TS_KEY)
    end = block.find(b'"', start)
    raw = block[start:end]
    value = cache.get(raw)
    if value is None:
        if len(cache) > 50_000:
            cache.clear()
        value = datetime.fromisoformat(raw.decode()).timestamp()  # 3.11 reads the trailing Z as UTC
        cache[raw] = value
    return value


async def _read_head(reader: asyncio.StreamReader) -> tuple[int, dict[bytes, bytes]]:
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split(b" ", 2)[1])
    headers = {}
    for line in lines[1:]:
        name, sep, value = line.partition(b":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    return status, headers


class HttpConn:
    """One keep-alive connection; `post_json` sends one request and reads its whole answer."""

    def __init__(self, base_url: str) -> None:
        self.host, self.port = _host_port(base_url)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def connect(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(self.host, self.port)

    async def post_json(self, path: str, body: Any) -> tuple[int, bytes]:
        if self._writer is None:
            await self.connect()
        assert self._reader is not None and self._writer is not None
        data = json.dumps(body, separators=(",", ":")).encode()
        self._writer.write(b"POST %s HTTP/1.1\r\nHost: %s:%d\r\nContent-Type: application/json\r\n"
                           b"Content-Length: %d\r\n\r\n%s" % (path.encode(), self.host.encode(), self.port,
                                                              len(data), data))
        status, headers = await _read_head(self._reader)
        if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
            dechunk, out = Dechunker(), bytearray()
            while not dechunk.done:
                out += dechunk.feed(await self._reader.read(65536) or b"0\r\n\r\n")
            payload = bytes(out)
        else:
            payload = await self._reader.readexactly(int(headers.get(b"content-length", b"0")))
        if headers.get(b"connection", b"").lower() == b"close":
            await self.close()
        return status, payload

    async def close(self) -> None:
        writer, self._writer, self._reader = self._writer, None, None
        if writer is not None:
            writer.close()
            try:
                await writer.wait_closed()
            except OSError:
                pass


@dataclass
class SSEStream:
    """One open SSE response: `read()` returns the complete frames that arrived (as raw blocks)."""

    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    chunked: bool
    _dechunk: Dechunker | None = None
    _buf: bytearray | None = None

    @classmethod
    async def open(cls, base_url: str, path: str) -> SSEStream:
        host, port = _host_port(base_url)
        reader, writer = await asyncio.open_connection(host, port)
        writer.write(b"GET %s HTTP/1.1\r\nHost: %s:%d\r\nAccept: text/event-stream\r\n\r\n"
                     % (path.encode(), host.encode(), port))
        status, headers = await _read_head(reader)
        if status != 200:
            writer.close()
            raise ConnectionError(f"GET {path} answered {status}")
        chunked = headers.get(b"transfer-encoding", b"").lower() == b"chunked"
        return cls(reader, writer, chunked, Dechunker() if chunked else None, bytearray())

    async def read(self) -> list[bytes] | None:
        """The next complete frames; None at the end of the stream."""
        assert self._buf is not None
        while True:
            data = await self.reader.read(65536)
            if not data:
                return None
            if self._dechunk is not None:
                data = self._dechunk.feed(data)
            self._buf += data.replace(b"\r\n", b"\n") if b"\r" in data else data
            frames = split_frames(self._buf)
            if frames:
                return frames
            if self._dechunk is not None and self._dechunk.done:
                return None

    def close(self) -> None:
        self.writer.close()
