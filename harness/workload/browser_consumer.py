"""A real browser's `EventSource` as an SSE consumer: Debian's Chromium driven by Playwright.

The browser reconnects by itself (after the stream's `retry:` or its own ~3 s), re-sends the original
URL with `Last-Event-ID`, and stops for good on a 204. This module only watches it and records what it
did into the History, so the same checkers judge it as the harness's own consumers:

- one `ConnOpened` per stream request the browser made (from Playwright's network events: the
  `Last-Event-ID` it sent and the status it got, None when the request failed before an answer),
- the `Frame`s the page's `EventSource` dispatched on that connection (the k-th `open` event of the
  page is the k-th request answered 200),
- a `ConnClosed` per connection (`terminal`, `204` or `error`).

Origin: `EventSource` across origins needs CORS headers the service does not send, so the page is
served *on the API origin*: Playwright fulfils a made-up URL under the stream's origin
(`<api_url>/__harness/browser-consumer.html`) from memory, then stops intercepting. The page's
origin is the `sse` proxy's origin and its stream requests go to the real service, unrouted.

Chromium is the Debian package (`/usr/bin/chromium`; scripts/setup.sh installs it as root); Playwright
never downloads a browser here.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import time
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from harness.history import ConnClosed, ConnOpened, Frame, History
from harness.model import to_epoch

CHROMIUM_PATH = os.environ.get("HARNESS_CHROMIUM", "/usr/bin/chromium")
LAUNCH_ARGS = ("--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
               "--disable-background-networking", "--disable-component-update", "--disable-sync")
EVENT_TYPES = ("RunStarted", "RunStep", "RunFinished", "message")
PAGE_PATH = "/__harness/browser-consumer.html"

_PAGE = """<!doctype html><meta charset="utf-8"><title>harness browser consumer</title>
<script>
window.harnessOpen = function (url, types) {
  const es = new EventSource(url);
  window.harnessES = es;
  let conn = -1;
  es.addEventListener("open", () => { conn += 1; window.harnessRecord({k: "open", conn, t: Date.now()}); });
  es.addEventListener("error", () => {
    window.harnessRecord({k: "error", conn, state: es.readyState, t: Date.now()});
  });
  for (const type of types) {
    es.addEventListener(type, (e) => window.harnessRecord(
      {k: "event", conn, type: e.type, id: e.lastEventId, data: e.data, t: Date.now()}));
  }
};
</script>"""


def chromium_executable() -> str | None:
    """The Chromium binary to drive, or None when it is not installed."""
    if os.access(CHROMIUM_PATH, os.X_OK):
        return CHROMIUM_PATH
    return shutil.which("chromium")


@dataclass
class StreamRequest:
    """One stream request of the browser, as the network saw it."""

    url: str
    last_event_id: str | None
    wall: float
    mono: float
    status: int | None = None
    failure: str | None = None
    frames: list[Frame] = field(default_factory=list)
    closed: tuple[float, float] | None = None  # (wall, mono) the page saw the connection end


@dataclass
class BrowserConsumer:
    """`async with BrowserConsumer(api_url, history) as b: await b.open(run_id); await b.wait_closed(20)`.

    `record()` then writes the connections and frames into the history (once, in connection order).
    """

    base_url: str
    history: History
    consumer: str = "browser"
    event_types: tuple[str, ...] = EVENT_TYPES
    requests: list[StreamRequest] = field(default_factory=list)
    page_events: list[dict[str, Any]] = field(default_factory=list)
    run_id: str = ""
    _pw: Any = None
    _browser: Any = None
    _page: Any = None
    _recorded: bool = False
    _by_request: dict[int, StreamRequest] = field(default_factory=dict, repr=False)  # id(playwright Request) ->
    _pending: list[asyncio.Future[None]] = field(default_factory=list, repr=False)  # header reads in flight

    async def __aenter__(self) -> BrowserConsumer:
        from playwright.async_api import async_playwright

        executable = chromium_executable()
        if executable is None:
            raise RuntimeError(f"Chromium not found at {CHROMIUM_PATH}: run scripts/setup.sh as root "
                               "(apt-get install chromium)")
        self._pw = await async_playwright().start()
        try:
            self._browser = await self._pw.chromium.launch(executable_path=executable, args=list(LAUNCH_ARGS),
                                                           headless=True)
            self._page = await self._browser.new_page()
        except BaseException:
            await self.aclose()
            raise
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the browser and the Playwright driver (also after a failure)."""
        for task in self._pending:
            task.cancel()
        browser, pw, self._browser, self._pw, self._page = self._browser, self._pw, None, None, None
        try:
            if browser is not None:
                await browser.close()
        finally:
            if pw is not None:
                await pw.stop()

    def stream_url(self, run_id: str) -> str:
        return f"{self.base_url.rstrip('/')}/api/agents/runs/{run_id}/stream"

    async def open(self, run_id: str) -> None:
        """Load the page on the API's origin and start its EventSource on the run's stream."""
        page, self.run_id = self._page, run_id
        stream = self.stream_url(run_id)
        page.on("request", self._on_request)
        page.on("response", self._on_response)
        page.on("requestfailed", self._on_failed)
        await page.expose_function("harnessRecord", self._on_page_event)
        page_url = self.base_url.rstrip("/") + PAGE_PATH
        await page.route(page_url, lambda route: route.fulfill(status=200, content_type="text/html", body=_PAGE))
        await page.goto(page_url)
        await page.unroute(page_url)  # the stream requests must not be intercepted (nor buffered)
        await page.evaluate("([url, types]) => window.harnessOpen(url, types)", [stream, list(self.event_types)])

    async def wait_closed(self, timeout_s: float) -> None:
        """Until the EventSource is CLOSED for good (the browser got a 204 or a fatal error)."""
        await self._page.wait_for_function("window.harnessES && window.harnessES.readyState === 2",
                                           timeout=timeout_s * 1000, polling=50)

    @property
    def connection_count(self) -> int:
        return len(self.requests)

    def _is_stream(self, request: Any) -> bool:
        return bool(self.run_id) and request.url.split("?")[0] == self.stream_url(self.run_id)

    def _on_request(self, request: Any) -> None:
        if not self._is_stream(request):
            return
        req = StreamRequest(request.url, request.headers.get("last-event-id"), time.time(), time.monotonic())
        self.requests.append(req)
        self._by_request[id(request)] = req
        # The provisional headers lack Last-Event-ID (Chromium's network stack adds it): read the sent ones.
        self._pending.append(asyncio.ensure_future(self._sent_headers(request, req)))

    @staticmethod
    async def _sent_headers(request: Any, req: StreamRequest) -> None:
        with contextlib.suppress(Exception):  # a request torn down before it was sent has none
            req.last_event_id = await request.header_value("last-event-id")

    def _on_response(self, response: Any) -> None:
        req = self._by_request.get(id(response.request))
        if req is not None:
            req.status = response.status

    def _on_failed(self, request: Any) -> None:
        req = self._by_request.get(id(request))
        if req is not None and req.status is None:
            req.failure = request.failure or "failed"

    def _on_page_event(self, event: dict[str, Any]) -> None:
        event["mono"] = time.monotonic() - max(0.0, time.time() - event["t"] / 1000)
        self.page_events.append(event)

    async def record(self) -> list[StreamRequest]:
        """Write the browser's connections and frames into the history; returns the stream requests.

        The k-th `open` of the page is the k-th request answered 200; a mismatch is an error, not a guess.
        """
        if self._recorded:
            return self.requests
        self._recorded = True
        if self._pending:
            await asyncio.wait(self._pending, timeout=5)
        answered = [r for r in self.requests if r.status == 200]
        opens = [e for e in self.page_events if e["k"] == "open"]
        if len(opens) != len(answered):
            raise AssertionError(f"the page opened {len(opens)} EventSource connections but the network saw "
                                 f"{len(answered)} answered 200: {self.describe()}")
        for ev in self.page_events:
            if ev["k"] == "error" and ev["conn"] >= 0 and answered[ev["conn"]].closed is None:
                answered[ev["conn"]].closed = (ev["t"] / 1000, ev["mono"])  # the page saw the drop
            if ev["k"] != "event":
                continue
            if ev["conn"] < 0:
                raise AssertionError(f"an event arrived before any open: {ev}")
            answered[ev["conn"]].frames.append(self._frame(ev))
        for n, req in enumerate(self.requests):
            conn = f"{self.consumer}#{n}"
            h = self.history
            h.append(ConnOpened(conn, self.consumer, self.run_id, None, req.last_event_id, req.status,
                                req.wall, req.mono))
            for fr in req.frames:
                h.append(Frame(conn, fr.consumer, fr.run_id, fr.seq, fr.type, fr.event_ts, fr.wall, fr.mono))
            last = req.frames[-1] if req.frames else None
            reason = ("204" if req.status == 204 else
                      "terminal" if last is not None and last.type == "RunFinished" else "error")
            end_wall, end_mono = req.closed or ((last.wall, last.mono) if last else (req.wall, req.mono))
            h.append(ConnClosed(conn, self.consumer, self.run_id, reason, end_wall, end_mono,
                                last.seq if last else None, req.failure))
        return self.requests

    def _frame(self, ev: dict[str, Any]) -> Frame:
        try:
            body = json.loads(ev["data"])
        except ValueError:
            body = {}
        body = body if isinstance(body, dict) else {}
        seq: int | None
        try:
            seq = int(ev["id"])
        except (TypeError, ValueError):
            seq = body.get("seq") if isinstance(body.get("seq"), int) else None
        etype = str(body.get("type") or ev["type"])
        return Frame("", self.consumer, self.run_id, seq, etype, to_epoch(body.get("ts")), ev["t"] / 1000,
                     ev["mono"])

    def describe(self) -> str:
        reqs = [f"#{n} lastEventId={r.last_event_id} status={r.status} failure={r.failure}"
                for n, r in enumerate(self.requests)]
        kinds = [f"{e['k']}:{e.get('id', e.get('state', ''))}@{e['conn']}" for e in self.page_events
                 if e["k"] != "event"]
        return f"requests [{'; '.join(reqs)}], page [{', '.join(kinds)}]"


__all__ = ["CHROMIUM_PATH", "BrowserConsumer", "StreamRequest", "chromium_executable"]
