"""`python -m reference_impl queue-worker`: runs queued jobs, i.e. scripted event sequences.

A job is claimed with `FOR UPDATE SKIP LOCKED` and a lease (lockedBy + lockedUntil) that is
extended while the job runs. A job whose lease expired (its worker died) is taken over and RESUMES
from what the run's event log says was done, so it finishes without gaps or duplicate steps. Every
append re-checks the lease in the same transaction (a fence) against the claim's fencing token,
(lockedBy, attempts): a worker paused or cut off past its lease cannot append next to the one that
took over, even when that one is itself (its claim loop retook the expired job as a new attempt).
"""

from __future__ import annotations

import asyncio
import os
import socket
import uuid
from dataclasses import dataclass
from typing import Any

import psycopg

from . import db, metrics
from .config import Config
from .event_log import TerminalRun, append
from .events import TERMINAL_STATES, TERMINAL_TYPE
from .failpoints import FailpointError, failpoint
from .listener import Listener
from .logs import Logger
from .script import Script, ScriptError, parse_script

__all__ = ["Job", "QueueWorker", "step_payload"]

WAKE_CHANNEL = "run_jobs_wake"
_log = Logger("queue-worker")

_CLAIM = """
UPDATE run_jobs j SET state = 'running', lockedBy = %(me)s, attempts = j.attempts + 1,
    lockedUntil = now() + %(lease)s * interval '1 millisecond', updatedAt = now()
WHERE j.id IN (
    SELECT id FROM run_jobs
    WHERE state = 'queued' OR (state = 'running' AND lockedUntil < now())
    ORDER BY createdAt LIMIT %(n)s FOR UPDATE SKIP LOCKED
)
RETURNING j.id, j.runId, j.script, j.attempts
"""
_EXTEND = """
UPDATE run_jobs SET lockedUntil = now() + %(lease)s * interval '1 millisecond', updatedAt = now()
WHERE id = %(job)s AND lockedBy = %(me)s AND attempts = %(attempt)s AND state = 'running' RETURNING id
"""
_RELEASE = """
UPDATE run_jobs SET state = %(state)s, lockedBy = NULL, lockedUntil = NULL, updatedAt = now()
WHERE id = %(job)s AND lockedBy = %(me)s AND attempts = %(attempt)s
"""
_PROGRESS = """
SELECT r.state,
       EXISTS (SELECT 1 FROM run_events e WHERE e.runId = r.id AND e.type = 'RunStarted'),
       (SELECT e.payload->'step' FROM run_events e WHERE e.runId = r.id AND e.type = 'RunStep'
        ORDER BY e.seq DESC LIMIT 1)
FROM runs r WHERE r.id = %s
"""
_ALPHABET = "abcdefghijklmnopqrstuvwxyz0123456789"


class LeaseLost(RuntimeError):
    """Another worker owns the job now (our lease expired): stop without appending."""


@dataclass(frozen=True)
class Job:
    id: int
    run_id: str
    script: Script
    attempt: int


@dataclass(frozen=True)
class Progress:
    state: str
    started: bool
    next_step: int  # the first RunStep index not yet appended


def _script(raw: Any) -> Script:
    try:
        return parse_script(raw)
    except ScriptError:
        return Script()  # a hand-edited job row: run the default script rather than crash the loop


def step_payload(step: int, size: int) -> dict[str, Any]:
    """`{"step", "data"}` with `size` deterministic ASCII characters of data."""
    data = (_ALPHABET * (size // len(_ALPHABET) + 1))[:size]
    return {"step": step, "data": data}


class QueueWorker:
    def __init__(self, config: Config) -> None:
        self._config = config
        self._me = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._pool = db.make_pool(config, max_size=config.queue_concurrency + 2)
        self._wake = asyncio.Event()
        self._listener = Listener(config, [WAKE_CHANNEL], lambda c, p: self._wake.set(),
                                  self._wake.set, "queue-worker")
        self._active: set[asyncio.Task[None]] = set()
        self._backoff = db.Backoff()

    @property
    def listening(self) -> bool:
        """For /healthz: the wake-up LISTEN connection is up (so the database answers)."""
        return self._listener.connected

    @property
    def lease_s(self) -> float:
        return self._config.job_lease_ms / 1000

    async def run(self, stop: asyncio.Event) -> None:
        await self._pool.open(wait=False)
        listener = asyncio.create_task(self._listener.run(), name="queue-listener")
        try:
            while not stop.is_set():
                claimed = await self._claim_some()
                if claimed == 0 or len(self._active) >= self._config.queue_concurrency:
                    await self._sleep(stop)
        finally:
            listener.cancel()
            await self._finish_in_flight()
            await self._pool.close(timeout=1.0)

    async def _sleep(self, stop: asyncio.Event) -> None:
        waiters = [asyncio.ensure_future(self._wake.wait()), asyncio.ensure_future(stop.wait())]
        await asyncio.wait(waiters, timeout=self._config.queue_poll_ms / 1000, return_when=asyncio.FIRST_COMPLETED)
        for waiter in waiters:
            waiter.cancel()
        self._wake.clear()

    async def _claim_some(self) -> int:
        free = self._config.queue_concurrency - len(self._active)
        if free <= 0:
            return 0
        try:
            jobs = await self._claim(free)
        except Exception as exc:  # an outage: log, back off, try again
            if not db.is_outage(exc):
                raise
            _log.error("worker:claim:error", error=str(exc))
            await self._backoff.sleep()
            return 0
        self._backoff.reset()
        for job in jobs:
            task = asyncio.create_task(self._run_job(job), name=f"job-{job.id}")
            self._active.add(task)
            task.add_done_callback(self._active.discard)
        return len(jobs)

    async def _claim(self, n: int) -> list[Job]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_CLAIM, {"me": self._me, "lease": self._config.job_lease_ms, "n": n})
            rows = await cur.fetchall()
        return [Job(job_id, run_id, _script(script), attempt) for job_id, run_id, script, attempt in rows]

    async def _finish_in_flight(self) -> None:
        """Give running jobs a moment, then cancel them and hand their leases back at once."""
        if not self._active:
            return
        await asyncio.wait(self._active, timeout=0.2)  # an in-flight append takes milliseconds
        for task in list(self._active):
            task.cancel()
        await asyncio.gather(*self._active, return_exceptions=True)

    # -- one job -------------------------------------------------------------------------------

    async def _run_job(self, job: Job) -> None:
        _log.info("worker:job:start", job.run_id, jobId=job.id, attempt=job.attempt)
        keeper = asyncio.create_task(self._keep_lease(job, asyncio.current_task()))
        try:
            status = await self._run_until_done(job)
            await self._release(job, "done")
            metrics.JOBS.labels(status).inc()
            _log.info("worker:job:done", job.run_id, jobId=job.id, status=status)
        except LeaseLost:
            _log.warn("worker:job:lost", job.run_id, jobId=job.id)
        except asyncio.CancelledError:
            await asyncio.shield(self._release_quietly(job))  # shutdown: let another worker resume now
            raise
        except Exception as exc:  # a bug: the lease expires and the job is retried elsewhere
            _log.error("worker:job:failed", job.run_id, jobId=job.id, error=repr(exc))
        finally:
            keeper.cancel()

    async def _run_until_done(self, job: Job) -> str:
        """Advance the job to its end, resuming from the event log after every outage."""
        while True:
            try:
                return await self._advance(job)
            except Exception as exc:
                if not (isinstance(exc, FailpointError) or db.is_outage(exc)):
                    raise
                _log.error("worker:job:error", job.run_id, jobId=job.id, error=str(exc) or repr(exc))
                await asyncio.sleep(0.5)

    async def _advance(self, job: Job) -> str:
        progress = await self._progress(job.run_id)
        if progress.state in TERMINAL_STATES:
            return progress.state  # finished earlier (or cancelled): nothing left to do
        script, first = job.script, True
        try:
            if not progress.started:
                await self._append(job, "RunStarted", {}, pause=False)
                first = False
            for step in range(progress.next_step, script.steps):
                await self._append(job, "RunStep", step_payload(step, script.payload_bytes), pause=not first)
                first = False
            await self._append(job, TERMINAL_TYPE, {"status": script.outcome}, pause=not first)
        except TerminalRun as exc:
            return exc.state  # cancelled through the API meanwhile
        return script.outcome

    async def _append(self, job: Job, event_type: str, payload: dict[str, Any], *, pause: bool) -> None:
        if pause and job.script.interval_ms:
            await asyncio.sleep(job.script.interval_ms / 1000)
        await failpoint("queue.before_append")

        async def fence(conn: psycopg.AsyncConnection[Any]) -> None:
            await self._extend(conn, job)

        async with self._pool.connection() as conn:
            await append(conn, job.run_id, event_type, payload, guard=fence)

    async def _progress(self, run_id: str) -> Progress:
        async with self._pool.connection() as conn:
            cur = await conn.execute(_PROGRESS, (run_id,))
            row = await cur.fetchone()
        if row is None:
            return Progress("cancelled", True, 0)  # the run is gone: treat the job as finished
        state, started, last_step = row
        next_step = last_step + 1 if isinstance(last_step, int) and not isinstance(last_step, bool) else 0
        return Progress(state, bool(started), next_step)

    # -- the lease -----------------------------------------------------------------------------

    async def _extend(self, conn: psycopg.AsyncConnection[Any], job: Job) -> None:
        # The attempt, not only our name: after an outage our own claim loop may have retaken the job.
        cur = await conn.execute(_EXTEND, {"lease": self._config.job_lease_ms, "job": job.id, "me": self._me,
                                           "attempt": job.attempt})
        if await cur.fetchone() is None:
            raise LeaseLost(f"job {job.id} attempt {job.attempt} is no longer leased by {self._me}")

    async def _keep_lease(self, job: Job, owner: asyncio.Task[Any] | None) -> None:
        """Extend the lease every third of its length while the job sleeps between events."""
        while True:
            await asyncio.sleep(self.lease_s / 3)
            try:
                async with self._pool.connection() as conn:
                    await self._extend(conn, job)
            except LeaseLost:
                if owner is not None:
                    owner.cancel()  # another worker owns it; stop appending at once
                return
            except Exception as exc:  # an outage: the fence in each append still protects us
                _log.warn("worker:lease:error", job.run_id, jobId=job.id, error=str(exc) or repr(exc))

    async def _release(self, job: Job, state: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(_RELEASE, {"state": state, "job": job.id, "me": self._me, "attempt": job.attempt})

    async def _release_quietly(self, job: Job) -> None:
        try:
            async with asyncio.timeout(1.0):
                await self._release(job, "queued")
        except Exception:  # best effort: the lease expires anyway
            pass
