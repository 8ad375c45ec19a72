"""One `harness load`: the stack (started here, or the running one of `harness up`), Locust as a
subprocess, the faults on the schedule's clock from Locust's launch, then the judgement of the recorded
frames by the scenarios' checkers, the figures, the plots and the verdict.

Locust runs apart because `import locust` monkey-patches the process with gevent; its processes write
their histories to `record/` and the master its lag classes to `lag.json` (scenarios/locustfile.py).
"""
from __future__ import annotations

import asyncio
import json
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx
import psycopg

from harness.errors import ConfigError, StackError, WaitTimeout
from harness.history import Frame, History, load_jsonl, of_kind
from harness.load.lag_classes import ClassCounts
from harness.load.locust_cmd import Endpoints, LoadPlan, locust_command
from harness.load.phases import label_phases
from harness.load.plots import write_plots
from harness.load.report import write_report
from harness.load.series import live_lags, per_phase, per_second
from harness.load.verdict import Verdict, lag_verdict, load_verdict
from harness.model import Snapshot
from harness.nemesis.schedule import Entry, Schedule, run_schedule
from harness.observer import snapshot_of, take_snapshot, wait_for_outbox
from harness.scenario import ScenarioRecord
from harness.stack import LocalStack
from harness.stack.config import StackConfig
from harness.stack.info import StackInfo
from harness.stack.supervisor import StateFiles, running_info
from harness.target import load_profile, reference_profile

__all__ = ["LOAD_CHECKS", "LoadRequest", "run_load"]

# The delivery invariants, judged over the frames the stream users recorded. Stream users stop where the
# load ends, so each is judged on the prefix it received (require_terminal False).
LOAD_CHECKS = ("exactly_once", "ordering", "gapless", "no_duplicate_delivery", "time_travel", "terminal",
               "content", "outbox_converged")
SETTLE_S = 30.0  # for the load's runs to end and their outbox to converge once they are cancelled
HEARTBEAT_MS = 15000  # the runbook's, for a running stack whose settings the harness does not know
_UNFINISHED = "SELECT id FROM runs WHERE createdAt >= %s AND state IN ('queued', 'started')"


@dataclass(frozen=True)
class LoadRequest:
    plan: LoadPlan
    faults: tuple[Entry, ...]
    out: Path  # reports/<time>/load
    command: str
    running: bool = False  # the stack of `harness up` instead of one started here
    target: Path | None = None


@dataclass(frozen=True)
class _Stack:
    info: StackInfo
    local: LocalStack | None
    stream_path: str
    heartbeat_ms: int


def run_load(req: LoadRequest, say: Callable[[str], None]) -> dict[str, Any]:
    """Run the load and write its report; the summary (with `verdict` and `exit_code`)."""
    if req.running and req.faults:
        raise ConfigError("--fault needs the stack `harness load` starts (without --running): its faults are"
                          " applied on the load's clock by this process")
    req.out.mkdir(parents=True, exist_ok=True)
    with _stack(req) as stack:
        say(f"stack ready: streams at {stack.info.api_url}; Locust for {req.plan.duration_s:g}s"
            f" ({req.plan.users} users, {len(req.faults)} fault window(s))")
        return _load(req, stack, say)


@contextmanager
def _stack(req: LoadRequest) -> Iterator[_Stack]:
    profile = load_profile(req.target) if req.target else reference_profile()
    if req.running:
        yield _Stack(running_info(StateFiles.default(), "`harness up --detach`"), None, profile.stream_path,
                     HEARTBEAT_MS)
        return
    config = StackConfig.from_env().with_overrides(logs_dir=req.out / "logs", profile=profile)
    assert config.service is not None
    with LocalStack(config) as local:
        yield _Stack(local.info, local, profile.stream_path, config.service.intervals.heartbeat_ms)


def _load(req: LoadRequest, stack: _Stack, say: Callable[[str], None]) -> dict[str, Any]:
    history = History()
    ends = Endpoints(stack.info.api_url, stack.info.api_direct_url, stack.stream_path,
                     read_timeout_s=2.5 * stack.heartbeat_ms / 1000)
    started = time.time()
    with open(req.out / "locust.out", "wb") as log:
        proc = subprocess.Popen(locust_command(req.plan, ends, req.out), stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            timing = asyncio.run(_faults_during(proc, stack.local, history, req.faults))
        finally:
            _end(proc)
    lag = _lag_file(req.out, proc.returncode)
    say(f"Locust ended (exit {proc.returncode}): live lag classes {lag['classes']}; judging the recorded frames")
    for path in sorted((req.out / "record").glob("*.jsonl")):
        for record in load_jsonl(path):
            history.append(record)
    run_ids = sorted({f.run_id for f in of_kind(history, Frame)})
    _cancel_unfinished(stack.info, started)
    snapshot = _snapshot(stack, run_ids)
    result = ScenarioRecord(req.out, history).judge(snapshot, LOAD_CHECKS, {"require_terminal": False})
    windows = [(t["entered_s"], t["exited_s"] or req.plan.duration_s) for t in timing if t["entered_s"] is not None]
    phases = label_phases(windows, req.plan.duration_s)
    seconds = per_second(history, snapshot, started, req.plan.duration_s)
    lags = [p.lag_ms for p in live_lags(history, started) if p.live]
    plots = write_plots(req.out, seconds, lags, phases)
    gate = lag_verdict(ClassCounts.from_dict(lag["classes"]), req.plan.gate, bool(lag["cpu_warning"]),
                       req.plan.min_samples)
    verdict = load_verdict(gate, result.valid)
    summary = _summary(req, started, verdict, lag, result.valid, result.evidence, timing, phases, history, seconds,
                       plots, proc.returncode)
    (req.out / "seconds.json").write_text(json.dumps(seconds))
    write_report(req.out, summary)
    return summary


async def _faults_during(proc: subprocess.Popen[bytes], stack: LocalStack | None, history: History,
                         entries: tuple[Entry, ...]) -> list[dict[str, Any]]:
    """The schedule on the loop's clock while Locust runs; a Locust that ends first ends the schedule
    (its final heal runs), a fault that cannot be applied ends Locust."""
    locust = asyncio.ensure_future(_exited(proc))
    if not entries or stack is None:
        await locust
        return []
    schedule = asyncio.ensure_future(run_schedule(stack, history, Schedule(entries)))
    await asyncio.wait({locust, schedule}, return_when=asyncio.FIRST_COMPLETED)
    if not schedule.done():
        schedule.cancel()
    try:
        timing: list[dict[str, Any]] = await schedule
    except asyncio.CancelledError:
        timing = []
    except BaseException:
        proc.terminate()
        await locust
        raise
    await locust
    return timing


async def _exited(proc: subprocess.Popen[bytes]) -> None:
    """Polled, not waited for in a thread: an interrupt must not wait for Locust's run time to pass."""
    while proc.poll() is None:
        await asyncio.sleep(0.2)


def _end(proc: subprocess.Popen[bytes]) -> None:
    """Nothing of Locust outlives the harness (an interrupt, a fault that failed)."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _lag_file(out: Path, code: int | None) -> dict[str, Any]:
    try:
        data: dict[str, Any] = json.loads((out / "lag.json").read_text())
    except (OSError, ValueError) as exc:
        raise StackError(f"Locust ended (exit {code}) without its results ({exc}): see {out / 'locust.log'}"
                         f" and {out / 'locust.out'}") from None
    return data


def _cancel_unfinished(info: StackInfo, since: float) -> None:
    """The load's runs still going (a run a writer was appending to when the load ended, a script still
    running) are cancelled, so every judged run reaches its terminal and the outbox converges."""
    created = datetime.fromtimestamp(since - 1.0, tz=timezone.utc)
    with psycopg.connect(info.dsn, autocommit=True, connect_timeout=5) as conn:
        ids = [str(row[0]) for row in conn.execute(_UNFINISHED, (created,)).fetchall()]
    with httpx.Client(base_url=info.api_direct_url, timeout=10) as client:
        for run_id in ids:
            client.post(f"/api/agents/runs/{run_id}/cancel", json={})


def _snapshot(stack: _Stack, run_ids: list[str]) -> Snapshot:
    try:
        wait_for_outbox(stack.info.dsn, run_ids, timeout=SETTLE_S)
    except WaitTimeout:
        pass  # judged as they stand: outbox_converged says what did not converge
    if stack.local is not None:
        return snapshot_of(stack.local, run_ids)
    return take_snapshot(stack.info.dsn, run_ids, Path(stack.info.logs_dir))


def _summary(req: LoadRequest, started: float, verdict: Verdict, lag: dict[str, Any], valid: object,
             evidence: dict[str, Any], timing: list[dict[str, Any]], phases: Any, history: History,
             seconds: list[dict[str, Any]], plots: dict[str, str], locust_code: int | None) -> dict[str, Any]:
    frames = of_kind(history, Frame)
    return {"schema_version": 1, "kind": "load", "command": req.command,
            "started": datetime.fromtimestamp(started, tz=timezone.utc).isoformat(),
            "seconds": round(time.time() - started, 1), "verdict": verdict.verdict, "exit_code": verdict.exit_code,
            "reasons": list(verdict.reasons), "gate": req.plan.gate, "classes": lag["classes"],
            "cpu_warning": lag["cpu_warning"], "locust_exit_code": locust_code,
            "configuration": {**asdict(req.plan), "running_stack": req.running,
                              "target": str(req.target) if req.target else None},
            "invariants": {"valid": valid, **{name: e.get("valid") for name, e in evidence.items()}},
            "faults": timing, "phases": per_phase(history, started, phases),
            "frames": len(frames), "runs": len({f.run_id for f in frames}),
            "peak_delivered_per_s": max((row["delivered"] for row in seconds), default=0),
            "plots": plots}
