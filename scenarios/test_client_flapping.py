"""Runbook: "Client Flapping" (High Reconnects), on the real local stack. A client timeout below the
heartbeat interval flaps and fires the SSE churn alert, one above it does not. An idle stream must never be
silent longer than the heartbeat interval plus a tolerance, on the session stack and through nginx
with its defaults (`proxy_buffering on`, HTTP/1.0 upstream: the incident's configuration), where only
the service's `X-Accel-Buffering: no` keeps the response head, heartbeats and live frames flowing. Judged by the
checkers from what the consumers actually received. Client timeouts, how soon a head must arrive and
how many heartbeats an idle stream must carry follow from the heartbeat interval
(`harness.toolkit.calibration`); the nginx stack's interval and the tolerances come from the environment
(`HARNESS_FLAP_HEARTBEAT_MS`, `HARNESS_HEARTBEAT_TOLERANCE_S`, `HARNESS_IDLE_S`)."""
from __future__ import annotations

import asyncio
import os
from typing import Callable

import pytest

from harness.runbook.alerts import AlertThresholds
from harness.scenario import DELIVERY, explain
from harness.stack import Intervals, LocalStack
from harness.toolkit import Scenario
from harness.toolkit.calibration import (
    head_within_s,
    heartbeats_within,
    read_timeout_above,
    read_timeout_below,
    reconnects_watch_s,
)

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.client_flapping]

FLAP_HEARTBEAT_MS = int(os.environ.get("HARNESS_FLAP_HEARTBEAT_MS", "2000"))
TOLERANCE_S = float(os.environ.get("HARNESS_HEARTBEAT_TOLERANCE_S", "1.0"))
IDLE_S = float(os.environ.get("HARNESS_IDLE_S", "5.0"))  # how long an idle stream is watched
FLAP_BACKOFF_MAX_S = 0.1  # the flapping client reconnects at once, as a browser's EventSource does


async def _watch_idle(scenario: Scenario, run_id: str, heartbeat_s: float) -> None:
    """Two clients on the idle stream for `IDLE_S`: each keeps its one connection and gets every heartbeat
    the watch has room for."""
    outcomes = await scenario.consume(run_id, 2, prefix="idle", deadline_s=IDLE_S)
    assert all(o.stop_reason == "deadline" and o.connections == 1 for o in outcomes), outcomes
    least = heartbeats_within(IDLE_S, heartbeat_s)
    got = {o.consumer: scenario.heartbeats(run_id, consumer=o.consumer) for o in outcomes}
    assert min(got.values()) >= least, f"fewer than {least} heartbeats in {IDLE_S} s: {got}"


async def test_an_idle_stream_heartbeats_within_the_interval(clean_db: str, scenario: Scenario,
                                                             service_intervals: Intervals) -> None:
    interval_s = service_intervals.heartbeat_ms / 1000
    run_id = await scenario.open_run()  # nothing ever appends to it: only heartbeats
    await _watch_idle(scenario, run_id, interval_s)
    result = scenario.judge(scenario.snapshot([run_id]), ("heartbeat",), {"heartbeat_interval_s": interval_s,
                                                                        "heartbeat_tolerance_s": TOLERANCE_S})
    assert result.valid is True, explain(result)


@pytest.mark.nginx
@pytest.mark.needs("x_accel_buffering")
async def test_heartbeats_and_frames_flow_through_a_buffering_nginx(stack_factory: Callable[..., LocalStack],
                                                                    scenario: Scenario) -> None:
    front = stack_factory(nginx="buffered", heartbeat_ms=FLAP_HEARTBEAT_MS)
    on_front = scenario.on(front)
    interval_s = FLAP_HEARTBEAT_MS / 1000
    idle_id = await on_front.open_run()
    live_id = await on_front.start_run(steps=12, interval_ms=300)
    live = on_front.consume(live_id, 1, prefix="live")
    asked = scenario.history.mono()
    await _watch_idle(on_front, idle_id, interval_s)
    assert all(o.reached_terminal for o in await live)
    # nginx with buffering on holds even the response head until the first body bytes unless the service
    # says `X-Accel-Buffering: no`: an idle stream then looks dead to the client for a whole heartbeat.
    heads = [c.opened.mono - asked for c in on_front.conns(idle_id, prefix="idle") if c.opened is not None]
    assert heads and max(heads) <= head_within_s(interval_s), \
        f"nginx held the response head {max(heads, default=None)}s"
    async with on_front.http() as http:  # the service's own answer, not nginx's
        async with http.stream("GET", f"{front.info.api_direct_urls[0]}/api/agents/runs/{idle_id}/stream") as resp:
            assert resp.headers.get("x-accel-buffering") == "no", dict(resp.headers)
    await on_front.wait_for_outbox([live_id], 30)
    # Live frames held in nginx's buffer arrive as one burst at the end: delivery lag would be seconds.
    result = on_front.judge(on_front.snapshot([idle_id, live_id]), ("heartbeat", "lag", *DELIVERY), {
        "heartbeat_interval_s": interval_s, "heartbeat_tolerance_s": TOLERANCE_S,
        "lag_source": "delivery", "lag_bound_ms": 1000, "lag_fail_on_trend": False,
        "require_terminal": {"idle": False}})  # the idle run never ends; the live consumer must reach its end
    assert result.valid is True, explain(result)


async def test_a_client_timeout_below_the_heartbeat_flaps_and_fires_sse_churn(
        clean_db: str, scenario: Scenario, service_intervals: Intervals) -> None:
    """Cause 4 of "Client Flapping", "client timeout too aggressive": a read timeout shorter than the
    heartbeat interval drops an idle stream before every heartbeat and reconnects, and the runbook's SSE
    churn alert fires for the run; a client above the interval keeps its one connection."""
    heartbeat_s = service_intervals.heartbeat_ms / 1000
    churn = AlertThresholds().churn_reconnects  # the runbook's: more connections than this fire the alert
    short_timeout_s = read_timeout_below(heartbeat_s)
    watch_s = reconnects_watch_s(churn, short_timeout_s, FLAP_BACKOFF_MAX_S)
    run_id = await scenario.open_run()  # nothing ever appends to it: only heartbeats
    flapping, steady = await asyncio.gather(
        scenario.consume(run_id, 1, prefix="short", read_timeout_s=short_timeout_s, deadline_s=watch_s,
                         backoff_initial_s=FLAP_BACKOFF_MAX_S / 2, backoff_max_s=FLAP_BACKOFF_MAX_S,
                         max_reconnects=1000),
        scenario.consume(run_id, 1, prefix="long", read_timeout_s=read_timeout_above(heartbeat_s), deadline_s=watch_s))
    assert steady[0].connections == 1, steady
    assert flapping[0].connections > churn, flapping
    thresholds = AlertThresholds(churn_window_s=watch_s + 5)  # a window over all of this test's connections
    alerts = {a.name: a for a in scenario.runbook.alerts(thresholds)}
    assert alerts["sse_churn"].firing and run_id in alerts["sse_churn"].evidence["runs"], alerts["sse_churn"]
