"""`harness check-profile`: start a target from its profile and probe it before any fault.

Each probe gives one finding: what was probed and, when it is a problem, how to fix it. The stack is
started as the suites start it (fast intervals: a 1 s heartbeat), the processes answer, the schema has the
runbook's tables, columns and indexes, a run streams as SSE (`text/event-stream`, an `id:` per frame, its
end), an idle stream heartbeats within the interval, and the log lines of the run are found and their
mapped fields parse. Probes after a failed start are not run: there is nothing to probe.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from harness.errors import HarnessError, WaitTimeout
from harness.runbook.schema_check import schema_check
from harness.service_logs import INSERTED, PUBLISHED, LogLine, read_log_lines
from harness.stack import Intervals, LocalStack, StackConfig, wait_until
from harness.target.profile import TargetProfile

__all__ = ["Finding", "check_profile"]

RUN_STEPS = 3
STREAM_TIMEOUT_S = 15.0


@dataclass(frozen=True)
class Finding:
    probe: str
    ok: bool
    detail: str  # what was seen; for a problem, also how to fix it

    def line(self) -> str:
        return f"{'ok' if self.ok else 'problem'}: {self.probe}: {self.detail}"


def check_profile(profile: TargetProfile, base: StackConfig) -> list[Finding]:
    """Every finding about the target, in probe order; a problem never stops the probes that do not need
    what failed."""
    config = base.with_overrides(profile=profile, intervals=Intervals.fast())
    stack = LocalStack(config)
    try:
        try:
            stack.start()
        except HarnessError as exc:
            first = str(exc).strip().splitlines()[0]
            return [Finding("processes", False, f"the target did not start: {first}; check each [[process]]'s"
                                                f" command, env and health path (logs in {stack.logs_dir})")]
        findings = [Finding("processes", True, ", ".join(p.name for p in stack.service.processes)
                            if stack.service else "none")]
        findings.append(_schema(stack.info.dsn))
        run_id, created = _run(stack, profile)
        findings.append(created)
        if run_id is not None:
            findings.append(_stream(stack, profile, run_id))
            findings.append(_logs(stack, profile, run_id))
        findings.append(_heartbeat(stack, profile))
        return findings
    finally:
        stack.stop()


def _schema(dsn: str) -> Finding:
    report = schema_check(dsn)
    if report.ok:
        return Finding("schema", True, "the runbook's tables, columns and indexes are there")
    return Finding("schema", False, "; ".join(report.missing) + ": the runbook's SQL needs them (docs/CONTRACTS.md,"
                                                                  " Schema); add them to the target's migration")


def _run(stack: LocalStack, profile: TargetProfile) -> tuple[str | None, Finding]:
    """A short run: scripted when the target has a queue worker, else appended by hand."""
    scripted = "queue_worker" in profile.capabilities
    body: dict[str, Any] = {"script": {"steps": RUN_STEPS, "interval_ms": 20}}
    if not scripted:
        body["job"] = False
    url = f"{stack.info.api_url}/api/agents/runs"
    try:
        resp = httpx.post(url, json=body, timeout=10)
    except httpx.HTTPError as exc:
        return None, Finding("create run", False, f"POST {url} failed: {exc!r}; is the api's port \"{{port}}\"?")
    run_id = resp.json().get("runId") if resp.status_code in (200, 201) and _is_json(resp) else None
    if run_id is None:
        return None, Finding("create run", False, f"POST {url} answered {resp.status_code} {resp.text[:120]!r};"
                                                  " the contract's answer is 201 with {\"runId\": ...}")
    if not scripted:
        problem = _append_by_hand(stack, str(run_id))
        if problem is not None:
            return None, problem
    return str(run_id), Finding("create run", True, f"run {run_id} ({'scripted' if scripted else 'appended by hand'})")


def _append_by_hand(stack: LocalStack, run_id: str) -> Finding | None:
    events = [("RunStep", {"step": n}) for n in range(RUN_STEPS)] + [("RunFinished", {"status": "succeeded"})]
    for type_, payload in events:
        url = f"{stack.info.api_url}/api/agents/runs/{run_id}/events"
        resp = httpx.post(url, json={"type": type_, "payload": payload}, timeout=10)
        if resp.status_code not in (200, 201):
            return Finding("create run", False, f"POST {url} answered {resp.status_code}: without a queue worker"
                                                " the harness appends events itself (capability append_endpoint)")
    return None


def _stream(stack: LocalStack, profile: TargetProfile, run_id: str) -> Finding:
    url = f"{stack.info.api_url}{profile.stream_path.format(run_id=run_id)}"
    blocks: list[list[str]] = []
    try:
        with httpx.stream("GET", url, timeout=STREAM_TIMEOUT_S) as resp:
            kind = resp.headers.get("content-type", "")
            if resp.status_code != 200 or not kind.startswith("text/event-stream"):
                return Finding("stream", False, f"GET {url} answered {resp.status_code} {kind or 'no content type'};"
                                                " check target.stream_path and that the stream is text/event-stream")
            blocks = _read_blocks(resp, time.monotonic() + STREAM_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return Finding("stream", False, f"GET {url} failed: {exc!r}")
    frames = [b for b in blocks if any(line.startswith("data:") for line in b)]
    without_id = [b for b in frames if not any(line.startswith("id:") for line in b)]
    if not frames:
        return Finding("stream", False, f"GET {url} sent no frame within {STREAM_TIMEOUT_S:g} s")
    if without_id:
        return Finding("stream", False, f"{len(without_id)} of {len(frames)} frames have no `id:` line; clients"
                                        " resume with Last-Event-ID from it")
    ended = any("RunFinished" in line for line in frames[-1])
    return Finding("stream", ended, f"{len(frames)} frames, each with an id" + (
        ", ending with RunFinished" if ended else f"; no RunFinished within {STREAM_TIMEOUT_S:g} s"))


def _read_blocks(resp: httpx.Response, deadline: float) -> list[list[str]]:
    """The stream's blocks (lines up to a blank line) until RunFinished or the deadline."""
    blocks: list[list[str]] = []
    block: list[str] = []
    for line in resp.iter_lines():
        if line:
            block.append(line)
        elif block:
            blocks.append(block)
            if any(part.startswith("data:") and "RunFinished" in part for part in block):
                break
            block = []
        if time.monotonic() > deadline:
            break
    return blocks


def _heartbeat(stack: LocalStack, profile: TargetProfile) -> Finding:
    """An idle stream (a run nothing appends to) sends a comment within the heartbeat interval."""
    interval_s = Intervals.fast().heartbeat_ms / 1000
    resp = httpx.post(f"{stack.info.api_url}/api/agents/runs", json={"script": {}, "job": False}, timeout=10)
    if resp.status_code not in (200, 201) or not _is_json(resp):
        return Finding("heartbeat", False, f"could not create an idle run ({resp.status_code}) to watch")
    url = f"{stack.info.api_url}{profile.stream_path.format(run_id=resp.json()['runId'])}"
    started = time.monotonic()
    try:
        with httpx.stream("GET", url, timeout=3 * interval_s) as stream:
            if stream.status_code != 200:
                return Finding("heartbeat", False, f"GET {url} answered {stream.status_code}: no stream to watch")
            for line in stream.iter_lines():
                if line.startswith(":"):
                    waited = time.monotonic() - started
                    ok = waited <= 2 * interval_s
                    return Finding("heartbeat", ok, f"a comment after {waited:.1f} s (interval {interval_s:g} s)"
                                   + ("" if ok else "; map the heartbeat interval to \"{heartbeat_ms}\" in the env"))
    except httpx.HTTPError:
        pass
    return Finding("heartbeat", False, f"no comment line on an idle stream within {3 * interval_s:g} s; the"
                                       " target's heartbeat interval should come from \"{heartbeat_ms}\"")


def _logs(stack: LocalStack, profile: TargetProfile, run_id: str) -> Finding:
    folder = Path(stack.info.logs_dir)

    def lines() -> list[LogLine]:
        return read_log_lines(folder, msg=(INSERTED, PUBLISHED), run_id=run_id, spec=profile.logs)

    def with_a_publish() -> list[LogLine] | None:
        found = lines()
        return found if any(ln.msg == PUBLISHED for ln in found) else None

    try:  # the outbox logs a publish after it marks it: give the last one a moment
        read = wait_until(with_a_publish, 5.0, "a publish line")
    except WaitTimeout:
        read = lines()  # without one: reported below
    published = [ln for ln in read if ln.msg == PUBLISHED]
    inserted = [ln for ln in read if ln.msg == INSERTED]
    if not published:
        return Finding("logs", False, f"no {PUBLISHED} line of run {run_id} in {folder}; map the target's names in"
                                      f" [logs.names] (format {profile.logs.format!r})")
    unparsed = [ln for ln in published if not _int(ln.obj.get("seq"))]
    if unparsed:
        return Finding("logs", False, f"{PUBLISHED} lines without a seq, e.g. {unparsed[0].raw[:120]!r}; map `seq`")
    return Finding("logs", True, f"{len(published)} {PUBLISHED} and {len(inserted)} {INSERTED} lines of the run,"
                                 " fields mapped")


def _int(value: object) -> bool:
    try:
        int(str(value))
    except ValueError:
        return False
    return True


def _is_json(resp: httpx.Response) -> bool:
    try:
        return isinstance(resp.json(), dict)
    except ValueError:
        return False
