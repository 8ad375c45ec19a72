"""A real browser as the SSE client: Chromium's `EventSource` (Debian's `chromium`, driven by Playwright)
consumes a run whose `sse` link is cut mid-stream. The browser must reconnect by itself with
`Last-Event-ID`, end up with every seq exactly once and in order, and, after the terminal event, get a
204 and never reconnect again. Judged by the checkers from the frames the page actually dispatched.

The page is served on the API's origin (see harness/workload/browser_consumer.py): the service sends
no CORS headers, so a cross-origin EventSource would be refused."""
from __future__ import annotations

from collections.abc import Callable

import pytest

from harness.stack import LocalStack
from harness.toolkit import Scenario
from harness.workload.browser_consumer import BrowserConsumer

pytestmark = [pytest.mark.tool("chromium"), pytest.mark.stack, pytest.mark.anyio]

RETRY_MS = 500  # the stream's `retry:`; Chromium's own default is about 3 s
STEPS, INTERVAL_MS = 40, 50  # about 2 s of stream: the cut lands mid-stream
QUIET_S = 3.0  # after the 204, no further request for this long (6 retry periods)


@pytest.fixture(autouse=True)
def _playwright_available() -> None:
    try:
        import playwright  # noqa: F401
    except ImportError:
        pytest.fail("the playwright package is missing: .venv/bin/pip install -e '.[test]' "
                    "(no `playwright install`: the Debian chromium is used)", pytrace=False)


async def test_a_browser_eventsource_resumes_after_a_cut_and_stops_after_the_terminal_event(
        stack_factory: Callable[..., LocalStack], scenario: Scenario) -> None:
    s = scenario.on(stack_factory(sse_retry_ms=RETRY_MS))
    async with BrowserConsumer(s.stack.info.api_url, s.history) as browser:
        run_id = await s.start_run(steps=STEPS, interval_ms=INTERVAL_MS)
        await browser.open(run_id)

        def frames() -> int:
            return sum(1 for e in browser.page_events if e["k"] == "event")

        await s.until(lambda: frames() >= 5, 10, "the browser's first frames")
        # Disabling the proxy closes the open stream for sure (a reset_peer toxic added mid-stream
        # sometimes lets an established connection live on); the browser retries after RETRY_MS.
        with s.nemesis.down("sse"):
            await s.hold(0.2)
        assert frames() < STEPS + 2, f"the cut came after the whole stream: {browser.describe()}"
        await browser.wait_closed(timeout_s=20)
        # The 204 closed the EventSource; the browser must not come back (nor the service see it): one
        # `stream-run` line per connection the API accepted.
        def accepted() -> int:
            return len(s.logs.lines("stream-run", process="api-*", run_id=run_id))

        requests, logged = browser.connection_count, accepted()
        await s.hold(QUIET_S)
        assert (browser.connection_count, accepted()) == (requests, logged), \
            f"the browser reconnected after the 204: {browser.describe()}"
        stream = await browser.record()

    assert len(stream) >= 3 and stream[-1].status == 204, f"no final 204: {browser.describe()}"
    answered = [r for r in stream if r.status == 200]
    assert len(answered) >= 2, f"the fault never cut the browser's stream: {browser.describe()}"
    assert answered[0].last_event_id is None and all(r.last_event_id for r in stream[1:]), \
        f"a reconnect without Last-Event-ID: {browser.describe()}"
    assert stream[-1].last_event_id == str(STEPS + 2), browser.describe()
    seqs = [f.seq for r in stream for f in r.frames]
    assert seqs == list(range(1, STEPS + 3)), f"the page got {seqs}"

    await s.assert_invariants([run_id], require_204_probe=True)
