"""Runbook: "Client Flapping" (High Reconnects), on the real local stack. A client timeout below the
heartbeat interval flaps and fires the SSE churn alert, one above it does not. An idle stream must never be
silent longer than the heartbeat interval plus a tolerance, on the session stack and through nginx
with its defaults (`proxy_buffering on`, HTTP/1.0 upstream: the incident's configuration), where only
the service's `X-Accel-Buffering: no` keeps the response head, heartbeats and live frames flowing. Judged by the
checkers from what the consumers actually received. Intervals and tolerances come from the
environment (`HARNESS_FLAP_HEARTBEAT_MS`, `HARNESS_HEARTBEAT_TOLERANCE_S`, `HARNESS_IDLE_S`,
`HARNESS_HEADERS_WITHIN_S`)."""
from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest

from harness.history import ConnOpened, Heartbeat, of_kind
from harness.observer import take_snapshot, wait_for_outbox
from harness.runbook.alerts import AlertThresholds, evaluate_alerts
from harness.scenario import (
    DELIVERY,
    ScenarioRecord,
    consumer_config,
    explain,
)
from harness.stack import Intervals, LocalStack
from harness.workload import (
    ClientConfig,
    RunsClient,
    RunScript,
    consume_all,
)

pytestmark = [pytest.mark.stack, pytest.mark.anyio, pytest.mark.client_flapping]

FLAP_HEARTBEAT_MS = int(os.environ.get("HARNESS_FLAP_HEARTBEAT_MS", "2000"))
# nginx with buffering on holds even the response head until the first body bytes unless the service
# says `X-Accel-Buffering: no`: an idle stream then looks dead to the client for a whole heartbeat.
HEADERS_WITHIN_S = float(os.environ.get("HARNESS_HEADERS_WITHIN_S", "1.0"))
TOLERANCE_S = float(os.environ.get("HARNESS_HEARTBEAT_TOLERANCE_S", "1.0"))
IDLE_S = float(os.environ.get("HARNESS_IDLE_S", "5.0"))  # how long an idle stream is watched


async def _idle_run(stack: LocalStack, scenario: ScenarioRecord) -> str:
    """A run without a job: nothing ever appends to it, so its stream only carries heartbeats."""
    async with RunsClient(ClientConfig(stack.info.api_url), scenario.history) as client:
        return await client.start_run(RunScript(), job=False)


async def _watch_idle(stack: LocalStack, scenario: ScenarioRecord, run_id: str) -> None:
    outcomes = await consume_all(consumer_config(stack, deadline_s=IDLE_S), scenario.history, run_id, 2, prefix="idle")
    assert all(o.stop_reason == "deadline" and o.connections == 1 for o in outcomes), outcomes


def _heartbeats(scenario: ScenarioRecord, prefix: str) -> int:
    return len([h for h in of_kind(scenario.history, Heartbeat) if h.consumer.startswith(prefix)])


async def test_an_idle_stream_heartbeats_within_the_interval(stack: LocalStack, clean_db: str,
                                                             scenario: ScenarioRecord,
                                                             service_intervals: Intervals) -> None:
    interval_s = service_intervals.heartbeat_ms / 1000
    run_id = await _idle_run(stack, scenario)
    await _watch_idle(stack, scenario, run_id)
    assert _heartbeats(scenario, "idle") >= 2 * int(IDLE_S / interval_s / 2)
    snapshot = take_snapshot(stack.info.dsn, [run_id], Path(stack.info.logs_dir))
    result = scenario.judge(snapshot, ("heartbeat",), {"heartbeat_interval_s": interval_s,
                                                       "heartbeat_tolerance_s": TOLERANCE_S})
    assert result.valid is True, explain(result)


@pytest.mark.nginx
async def test_heartbeats_and_frames_flow_through_a_buffering_nginx(stack_factory, scenario: ScenarioRecord) -> None:
    front = stack_factory(nginx="buffered", heartbeat_ms=FLAP_HEARTBEAT_MS)
    interval_s = FLAP_HEARTBEAT_MS / 1000
    idle_id = await _idle_run(front, scenario)
    async with RunsClient(ClientConfig(front.info.api_url), scenario.history) as client:
        live_id = await client.start_run(RunScript(steps=12, interval_ms=300))
    live = asyncio.ensure_future(consume_all(consumer_config(front), scenario.history, live_id, 1, prefix="live"))
    asked = scenario.history.mono()
    await _watch_idle(front, scenario, idle_id)
    assert all(o.reached_terminal for o in await live)
    assert _heartbeats(scenario, "idle") >= 2, "no heartbeat got through nginx"
    heads = [o.mono - asked for o in of_kind(scenario.history, ConnOpened) if o.consumer.startswith("idle")]
    assert heads and max(heads) <= HEADERS_WITHIN_S, f"nginx held the response head {max(heads, default=None)}s"
    async with httpx.AsyncClient(timeout=10) as http:  # the service's own answer, not nginx's
        async with http.stream("GET", f"{front.info.api_direct_urls[0]}/api/agents/runs/{idle_id}/stream") as resp:
            assert resp.headers.get("x-accel-buffering") == "no", dict(resp.headers)
    wait_for_outbox(front.info.dsn, [live_id], timeout=30)
    snapshot = take_snapshot(front.info.dsn, [idle_id, live_id], Path(front.info.logs_dir))
    # Live frames held in nginx's buffer arrive as one burst at the end: delivery lag would be seconds.
    result = scenario.judge(snapshot, ("heartbeat", "lag", *DELIVERY), {
        "heartbeat_interval_s": interval_s, "heartbeat_tolerance_s": TOLERANCE_S,
        "lag_source": "delivery", "lag_bound_ms": 1000, "lag_fail_on_trend": False,
        "require_terminal": {"idle": False}})  # the idle run never ends; the live consumer must reach its end
    assert result.valid is True, explain(result)


async def test_a_client_timeout_below_the_heartbeat_flaps_and_fires_sse_churn(
        stack: LocalStack, clean_db: str, scenario: ScenarioRecord, service_intervals: Intervals) -> None:
    """Cause 4 of "Client Flapping", "client timeout too aggressive": a read timeout shorter than the
    heartbeat interval drops an idle stream before every heartbeat and reconnects, and the runbook's SSE
    churn alert fires for the run; a client above the interval keeps its one connection."""
    heartbeat_s = service_intervals.heartbeat_ms / 1000
    watch_s = 2 * IDLE_S
    run_id = await _idle_run(stack, scenario)
    aggressive = consumer_config(stack, read_timeout_s=heartbeat_s / 3, deadline_s=watch_s,
                                 backoff_initial_s=0.05, backoff_max_s=0.1, max_reconnects=1000)
    patient = consumer_config(stack, read_timeout_s=3 * heartbeat_s, deadline_s=watch_s)
    flapping, steady = await asyncio.gather(consume_all(aggressive, scenario.history, run_id, 1, prefix="short"),
                                            consume_all(patient, scenario.history, run_id, 1, prefix="long"))
    assert steady[0].connections == 1, steady
    assert flapping[0].connections > 10, flapping
    thresholds = AlertThresholds(churn_window_s=watch_s + 5)
    alerts = {a.name: a for a in evaluate_alerts(stack.info.dsn, Path(stack.info.logs_dir), thresholds)}
    assert alerts["sse_churn"].firing and run_id in alerts["sse_churn"].evidence["runs"], alerts["sse_churn"]
