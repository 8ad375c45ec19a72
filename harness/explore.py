"""Generated fault schedules: a Hypothesis `RuleBasedStateMachine` over the real local stack.

Its rules start runs, connect SSE consumers (either resume mode, any starting cursor), cut the SSE
link, pause a process, kill the outbox worker or crash it between publish and mark, slow a
PostgreSQL link, and heal. Every schedule also starts a slow run (silent for longer than the heartbeat
interval). Its final check (in `teardown`) heals everything, starts a steady run, lets every consumer
finish within a deadline, tries one append after each run's end, takes the snapshot and asserts every
invariant (`CHECKS`: all of `harness.checks.CHECKERS`, each one decidable in every schedule); on a
failure Hypothesis shrinks the schedule and the shrunk steps are printed as a reproduction; its
encoding (`Shrunk`) replays exactly that schedule (`ExploreBudget.reproduce`, used by `harness replay`).

Each fault rule produces the schedule entry it applies (harness/nemesis/schedule.py: fault kind, target,
params, start and end seconds from the example's start; a held fault ends at the heal that ends it) and
applies it through the same table (`open_fault`). Beside the prose of `schedules.txt`, the example's
schedule (its entries, the seed, the workload's operations as data and its steps as prose) is written to
`schedule.json`, and to the `failed-example-N` folder of a failing example.

The same machine serves two callers:

- pytest (`scenarios/test_generated_schedules.py`): `ExploreBudget.ci()`, derandomized, small (the
  regression set), and one fresh random seed per run with a smaller budget.
- the CLI (`harness explore`): `ExploreBudget(examples, steps, seed)`, random, larger; the shrunk
  schedule is also written to a file (`explore_report`).

Hypothesis rules are synchronous, so consumers that live across steps run on an asyncio loop in a
background thread (`_LoopThread`); every wait is bounded and the loop is stopped in `teardown`.
"""
from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import re
import threading
import time
from collections.abc import Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import hypothesis
from hypothesis import HealthCheck
from hypothesis.errors import DidNotReproduce
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle, RuleBasedStateMachine, initialize, precondition, rule, run_state_machine_as_test,
)

from harness.checks import CHECKERS, CheckOptions
from harness.errors import ConfigError
from harness.history import History
from harness.nemesis import Entry, LimitData, ResetPeer, Schedule, open_fault
from harness.observer import snapshot_of, wait_for_outbox
from harness.scenario import ScenarioRecord, explain
from harness.stack import Intervals, LocalStack, truncate_service_tables
from harness.workload import ClientConfig, ConsumerConfig, ConsumerOutcome, RunsClient, RunScript, SSEConsumer

__all__ = ["CHECKS", "ExploreBudget", "ExploreOutcome", "ScheduleLog", "Shrunk", "explore", "explore_report",
           "make_machine", "run_machine"]

CHECKS = tuple(CHECKERS)  # every invariant: a schedule is judged by all that the suite knows
CONSUMER_DEADLINE_S = 60.0  # a consumer gives up on its own after this; teardown waits a little longer
OUTBOX_DEADLINE_S = 30.0  # invariant 6's bound once every fault is healed
RUN_STEPS = st.integers(0, 40)
RUN_INTERVALS_MS = st.sampled_from([0, 10, 30, 60])
# The slow run pauses 3 heartbeat intervals between its events; the tolerance is one interval, so a
# stream that does not heartbeat fails. The steady run, started after the final heal, gives the lag
# check samples outside every fault window (and past its settle second) in every schedule.
SLOW_INTERVALS = 3
STEADY_STEPS, STEADY_INTERVAL_MS = 8, 250
KILL_WINDOW_MS = 300  # a kill on a target whose one process does every role: down this long, then restarted


@dataclass(frozen=True)
class Shrunk:
    """A failure's shrunk example as Hypothesis encodes it (`@reproduce_failure`): replaying it runs
    exactly that schedule, with the same Hypothesis version only."""

    hypothesis: str
    blob: str

    @classmethod
    def of(cls, exc: BaseException) -> Shrunk | None:
        """From the failure's notes (Hypothesis prints the decorator there when `print_blob` is set)."""
        found = _BLOB.search("\n".join(getattr(exc, "__notes__", [])))
        return cls(found["version"], found["blob"]) if found else None


_BLOB = re.compile(r"@reproduce_failure\('(?P<version>[^']+)', b'(?P<blob>[^']+)'\)")
# DidNotReproduce's messages when the shrunk example ran without failing: to its end, or to the end of its
# recorded steps, after which the machine asked for more (a failure inside a step ended it there). The
# second also reads so when the machine's code changed: the replay names the report's commit for that.
_PASSED = ("completed successfully", "shape of the test data has changed")


@dataclass(frozen=True)
class ExploreBudget:
    """How much to explore: `ci()` for `make test`, random with a larger budget from the CLI."""

    examples: int = 20
    steps: int = 12
    seed: int | None = None
    derandomize: bool = False
    reproduce: Shrunk | None = None  # run exactly this failure's shrunk schedule, nothing else

    @classmethod
    def ci(cls) -> ExploreBudget:
        return cls(examples=8, steps=10, derandomize=True)

    def settings(self) -> hypothesis.settings:
        return hypothesis.settings(
            max_examples=self.examples, stateful_step_count=self.steps, deadline=None, database=None,
            derandomize=self.derandomize, print_blob=True,  # the blob: `Shrunk`, for an exact replay
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        )


@dataclass
class ScheduleLog:
    """The steps of the example being run (the last one is the shrunk reproduction after a failure)."""

    steps: list[str] = field(default_factory=list)
    faults: list[Entry] = field(default_factory=list)  # the example's fault schedule, in start order
    # its workload as data, in order: {"op": "start_run" | "consume", "at_s": seconds from the start, ...}
    operations: list[dict[str, Any]] = field(default_factory=list)
    examples: int = 0
    seed: int | None = None
    shrunk: Shrunk | None = None  # after a failure
    # told as each example ends: (its number, its steps, "kept every invariant" | "failed: why" | "a step
    # raised", seconds), for a person watching a long exploration
    on_example: Callable[[int, int, str, float], None] | None = None

    def begin(self) -> list[str]:
        self.examples += 1
        self.steps, self.faults, self.operations = [], [], []
        return self.steps

    def schedule(self) -> Schedule:
        """The example as data: its faults, the seed, its workload's operations and its steps (prose)."""
        return Schedule(tuple(self.faults), self.seed, {"generator": "harness explore", "operations":
                                                        list(self.operations), "steps": list(self.steps)})

    def write(self, folder: Path) -> None:
        (folder / "schedule.json").write_text(self.schedule().to_json() + "\n")

    def render(self) -> str:
        return "\n".join(f"  {i}. {step}" for i, step in enumerate(self.steps, 1)) or "  (no steps)"


@dataclass(frozen=True)
class RunRef:
    """A run the schedule started; printed by its label so a reproduction reads `run0`, `run1`."""

    label: str
    run_id: str
    terminal_seq: int  # RunStarted + steps + RunFinished

    def __repr__(self) -> str:
        return self.label


class _LoopThread:
    """An asyncio loop in a daemon thread for consumers that outlive one rule."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="explore-loop", daemon=True)
        self.thread.start()

    def submit(self, coro: Coroutine[Any, Any, Any]) -> concurrent.futures.Future[Any]:
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def run(self, coro: Coroutine[Any, Any, Any], timeout: float) -> Any:
        return self.submit(coro).result(timeout)

    def stop(self) -> None:
        """Cancel what is left, stop the loop and join the thread (bounded)."""
        if self.loop.is_closed():
            return

        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        with contextlib.suppress(Exception):
            self.run(cancel_all(), timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)
        if not self.thread.is_alive():
            self.loop.close()


def make_machine(stack: LocalStack, folder: Path, log: ScheduleLog) -> type[RuleBasedStateMachine]:
    """A state machine class bound to a started stack; each example's files land in `folder`."""
    has_failpoints = "failpoints" in stack.profile.capabilities
    # One process doing every role (`all`): a kill held across steps would take the API down with the
    # worker and fail the next step's request (the harness's doing, not the target's), so there a kill
    # is a bounded window (crash, then restart) and the held crash is left out.
    separate_roles = "separate_roles" in stack.profile.capabilities

    class FaultSchedule(RuleBasedStateMachine):
        runs = Bundle("runs")

        def __init__(self) -> None:
            super().__init__()
            self.history = History()
            self.loop = _LoopThread()
            self.held: dict[str, tuple[int, contextlib.ExitStack]] = {}  # slot: its entry's index, its fault
            self.t0 = time.monotonic()  # the schedule's clock: entries' seconds are from here
            self.consumers: list[concurrent.futures.Future[ConsumerOutcome]] = []
            self.refs: list[RunRef] = []
            self.steps = log.begin()
            self.broken = False  # a step raised: teardown heals but does not judge

        @contextlib.contextmanager
        def _step(self, text: str) -> Iterator[None]:
            self.steps.append(text)
            try:
                yield
            except BaseException:
                self.broken = True
                raise

        @initialize(target=runs, steps=RUN_STEPS, interval_ms=RUN_INTERVALS_MS)
        def reset_and_start(self, steps: int, interval_ms: int) -> RunRef:
            """Every schedule starts clean, with one run and one consumer, so no verdict is vacuous; and
            with a slow run (silent for longer than the heartbeat interval) whose stream must heartbeat."""
            with self._step("reset: heal the stack, truncate the tables"):
                stack.heal()
                truncate_service_tables(stack.info.dsn)
            slow = self._new_run(0, SLOW_INTERVALS * _heartbeat_ms(stack))
            self.connect_consumer(slow, "from_seq", 0)
            ref = self._new_run(steps, interval_ms)
            self.connect_consumer(ref, "from_seq", 0)
            return ref

        @rule(target=runs, steps=RUN_STEPS, interval_ms=RUN_INTERVALS_MS)
        def start_run(self, steps: int, interval_ms: int) -> RunRef:
            return self._new_run(steps, interval_ms)

        def _new_run(self, steps: int, interval_ms: int) -> RunRef:
            """start_run's body, callable with its type: a @rule method's result is typed as a bundle value."""
            label = f"run{len(self.refs)}"
            self._operation("start_run", run=label, steps=steps, interval_ms=interval_ms)
            with self._step(f"{label} = start_run(steps={steps}, interval_ms={interval_ms})"):
                run_id = self.loop.run(self._create(RunScript(steps=steps, interval_ms=interval_ms)), 30)
            ref = RunRef(label, run_id, steps + 2)
            self.refs.append(ref)
            return ref

        async def _create(self, script: RunScript) -> str:
            async with RunsClient(ClientConfig(stack.info.api_url, timeout_s=20), self.history) as client:
                return await client.start_run(script)

        @rule(run=runs, resume=st.sampled_from(["from_seq", "last_event_id"]), from_seq=st.integers(0, 24))
        def connect_consumer(self, run: RunRef, resume: str, from_seq: int) -> None:
            cursor = min(from_seq, run.terminal_seq)  # past the terminal the contract is a 204 anyway
            name = f"c{len(self.consumers)}"
            with self._step(f"connect_consumer({run.label}, resume={resume!r}, from_seq={cursor}) as {name}"):
                self._consume(run, name, resume, cursor)

        def _operation(self, op: str, **params: Any) -> None:
            log.operations.append({"op": op, "at_s": round(time.monotonic() - self.t0, 3), **params})

        def _consume(self, run: RunRef, name: str, resume: str, cursor: int) -> None:
            self._operation("consume", consumer=name, run=run.label, resume=resume, from_seq=cursor)
            config = ConsumerConfig(base_url=stack.info.api_url, resume=resume, read_timeout_s=10,  # type: ignore[arg-type]
                                    deadline_s=CONSUMER_DEADLINE_S, backoff_initial_s=0.05, backoff_max_s=0.5,
                                    stream_path=stack.profile.stream_path)
            self.consumers.append(self.loop.submit(SSEConsumer(config, self.history).consume(run.run_id, name, cursor)))

        @rule(cut=st.sampled_from([ResetPeer(timeout=0), LimitData(bytes=600)]), window_ms=st.sampled_from([100, 300]))
        def cut_sse(self, cut: ResetPeer | LimitData, window_ms: int) -> None:
            with self._step(f"cut_sse({cut}, window_ms={window_ms})"):
                self._window("toxic", "sse", {"toxic": cut.type, **cut.attributes()}, window_ms)

        @rule(process=st.sampled_from(["outbox-worker-0", "queue-worker-0", "api-0"]),
              pause_ms=st.sampled_from([200, 800]))
        def pause_then_resume(self, process: str, pause_ms: int) -> None:
            with self._step(f"pause_then_resume({process}, pause_ms={pause_ms})"):
                if not stack.process(process).running:  # killed by a held fault: nothing to pause
                    self.steps[-1] += " (skipped: not running)"
                    return
                self._window("pause", process, {}, pause_ms)

        @precondition(lambda self: "outbox" not in self.held)
        @rule()
        def kill_outbox_worker(self) -> None:
            if not separate_roles:
                with self._step(f"kill_outbox_worker() (restarted after {KILL_WINDOW_MS} ms: the process does every role)"):
                    self._window("kill", "outbox-worker-0", {}, KILL_WINDOW_MS)
                return
            with self._step("kill_outbox_worker() (held until heal)"):
                self._hold("outbox", "kill", "outbox-worker-0", {})

        @precondition(lambda self: separate_roles and "outbox" not in self.held)
        @rule()
        def crash_outbox_after_publish(self) -> None:
            # A target without failpoints gets the nearest real fault: a kill while events are in flight.
            # (`or_kill`: a kill while events are in flight, harness/nemesis/stand_in.py).
            how = "" if has_failpoints else ", a kill in flight standing in"
            with self._step(f"crash_outbox_after_publish(): failpoint outbox.after_publish=1*crash{how} (held until heal)"):
                self._hold("outbox", "failpoint", "outbox-worker-0",
                           {"name": "outbox.after_publish", "action": "1*crash", "or_kill": True})

        @precondition(lambda self: "pg" not in self.held)
        @rule(link=st.sampled_from([link for link in stack.links if link != "sse"]),
              latency_ms=st.sampled_from([50, 250]))
        def pg_latency(self, link: str, latency_ms: int) -> None:
            with self._step(f"pg_latency({link}, latency_ms={latency_ms}) (held until heal)"):
                self._hold("pg", "toxic", link, {"toxic": "latency", "latency": latency_ms})

        def _now(self) -> float:
            return round(time.monotonic() - self.t0, 3)

        def _entry(self, fault: str, target: str,
                   params: dict[str, Any]) -> tuple[int, contextlib.AbstractContextManager[Any]]:
            """The entry, recorded as started now (open until `_ended`), and its fault's context manager."""
            log.faults.append(Entry(fault, target, params, self._now()))
            return len(log.faults) - 1, open_fault(stack, self.history, fault, target, params)

        def _ended(self, index: int) -> None:
            log.faults[index] = dataclasses.replace(log.faults[index], end_s=self._now())

        def _window(self, fault: str, target: str, params: dict[str, Any], window_ms: int) -> None:
            index, cm = self._entry(fault, target, params)
            try:
                with cm:
                    time.sleep(window_ms / 1000)
            finally:
                self._ended(index)

        def _hold(self, slot: str, fault: str, target: str, params: dict[str, Any]) -> None:
            index, cm = self._entry(fault, target, params)
            held = contextlib.ExitStack()
            try:
                held.enter_context(cm)
            except BaseException:
                self._ended(index)
                raise
            self.held[slot] = (index, held)

        @rule()
        def heal(self) -> None:
            with self._step("heal()"):
                self._heal()

        def _heal(self) -> None:
            while self.held:  # each fault ends only itself, so the order is free: newest first
                _, (index, held) = self.held.popitem()
                try:
                    held.close()
                finally:
                    self._ended(index)
            stack.heal()

        def teardown(self) -> None:
            outcome = "a step raised" if self.broken else "kept every invariant"
            try:
                self._heal()
                if not self.broken:
                    self._final_check()
            except BaseException as exc:
                outcome = f"failed: {(str(exc).strip().splitlines() or [type(exc).__name__])[0]}"
                raise
            finally:
                self.loop.stop()
                with (folder / "schedules.txt").open("a") as out:
                    out.write(f"example {log.examples}{' (step raised)' if self.broken else ''}:\n{log.render()}\n")
                log.write(folder)  # the last example's: after a failure, the shrunk one
                if log.on_example is not None:
                    log.on_example(log.examples, len(self.steps), outcome, time.monotonic() - self.t0)

        def _final_check(self) -> None:
            if not self.refs:
                return
            self.steps.append("final check: heal, one more consumer per run from 0, a steady run, wait, "
                              "an append after each run's end, judge")
            for ref in self.refs:
                self._consume(ref, f"final-{ref.label}", "from_seq", 0)
            steady = self._new_run(STEADY_STEPS, STEADY_INTERVAL_MS)
            self._consume(steady, f"steady-{steady.label}", "from_seq", 0)
            unfinished = self._wait_consumers()
            ids = [ref.run_id for ref in self.refs]
            wait_for_outbox(stack.info.dsn, ids, timeout=OUTBOX_DEADLINE_S)
            self.loop.run(self._append_after_terminal(), 30)
            snapshot = snapshot_of(stack, ids)
            result = ScenarioRecord(folder, self.history).judge(snapshot, CHECKS, _opts(stack))
            if result.valid is True and not unfinished:
                return
            # Each failing example keeps its own files: shrinking and Hypothesis' replay overwrite `folder`.
            kept = folder / f"failed-example-{log.examples}"
            kept.mkdir(exist_ok=True)
            ScenarioRecord(kept, self.history).judge(snapshot, CHECKS, _opts(stack))
            log.write(kept)
            runs = ", ".join(f"{r.label}={r.run_id}" for r in self.refs)
            raise AssertionError(f"{explain(result)}\nconsumers not finished: {unfinished}\nruns: {runs}\n"
                                 f"history: {kept}\nschedule:\n{log.render()}")

        async def _append_after_terminal(self) -> None:
            """One append to each ended run: the contract's refusal is judged (no_append_after_terminal)."""
            async with RunsClient(ClientConfig(stack.info.api_url, timeout_s=20), self.history) as client:
                for ref in self.refs:
                    await client.append_event(ref.run_id, "RunStep", {"after": "terminal"})

        def _wait_consumers(self) -> list[str]:
            done, pending = concurrent.futures.wait(self.consumers, timeout=CONSUMER_DEADLINE_S + 15)
            for fut in pending:
                fut.cancel()
            return [f"#{i}" for i, fut in enumerate(self.consumers) if fut in pending]

    FaultSchedule.__name__ = FaultSchedule.__qualname__ = "FaultSchedule"
    return FaultSchedule


def _heartbeat_ms(stack: LocalStack) -> int:
    return (stack.config.service.intervals if stack.config.service else Intervals.fast()).heartbeat_ms


def _opts(stack: LocalStack) -> CheckOptions:
    """The checkers' options for the stack's own intervals (its heartbeat period, one period of tolerance)."""
    interval_s = _heartbeat_ms(stack) / 1000
    return CheckOptions(heartbeat_interval_s=interval_s, heartbeat_tolerance_s=interval_s)


def explore(stack: LocalStack, budget: ExploreBudget, folder: Path, log: ScheduleLog | None = None) -> ScheduleLog:
    """Run the generated schedules against `stack`; raises (after shrinking) when an invariant fails."""
    folder.mkdir(parents=True, exist_ok=True)
    log = log or ScheduleLog()
    log.seed = budget.seed
    run_machine(make_machine(stack, folder, log), budget, log)
    return log


def run_machine(machine: type[RuleBasedStateMachine], budget: ExploreBudget, log: ScheduleLog) -> None:
    """Run the machine under the budget; a failure's shrunk example lands in `log.shrunk`. With
    `budget.reproduce`, exactly that example runs: its passing is no error, a schedule that no longer fits
    the machine (or another Hypothesis version) is a ConfigError: it was not judged."""
    if budget.seed is not None:
        machine = hypothesis.seed(budget.seed)(machine)
    if budget.reproduce is not None:
        if budget.reproduce.hypothesis != hypothesis.__version__:
            raise ConfigError(f"the shrunk schedule was recorded with Hypothesis {budget.reproduce.hypothesis}, "
                              f"this is {hypothesis.__version__}: install that one to replay it exactly")
        machine = hypothesis.reproduce_failure(budget.reproduce.hypothesis,
                                               budget.reproduce.blob.encode())(machine)
    try:
        run_state_machine_as_test(machine, settings=budget.settings())
    except DidNotReproduce as exc:
        if not any(text in str(exc) for text in _PASSED):
            raise ConfigError(f"the shrunk schedule no longer fits the machine: {exc}") from exc
    except Exception as exc:
        log.shrunk = Shrunk.of(exc)
        raise


@dataclass(frozen=True)
class ExploreOutcome:
    passed: bool
    examples: int
    seconds: float
    reproduction: str = ""  # the shrunk schedule and the failure, when not passed
    shrunk: Shrunk | None = None  # its encoding, for an exact replay
    steps: tuple[str, ...] = ()  # the shrunk schedule's steps, as the reproduction lists them


def explore_report(stack: LocalStack, budget: ExploreBudget, folder: Path,
                   on_example: Callable[[int, int, str, float], None] | None = None) -> ExploreOutcome:
    """`explore`, with a failure turned into a readable reproduction (also written to a file);
    `on_example`: ScheduleLog's."""
    log, start = ScheduleLog(on_example=on_example), time.monotonic()
    try:
        explore(stack, budget, folder, log)
    except ConfigError:
        raise  # a replay that could not run: no verdict
    except Exception as exc:  # the shrunk failure: Hypothesis put the steps in the exception's notes
        notes = "\n".join(getattr(exc, "__notes__", []))
        text = (f"seed: {budget.seed}\nfailure: {type(exc).__name__}: {exc}\n\n"
                f"shrunk schedule (harness steps):\n{log.render()}\n\nhypothesis:\n{notes}\n")
        (folder / "reproduction.txt").write_text(text)
        return ExploreOutcome(False, log.examples, time.monotonic() - start, text, log.shrunk, tuple(log.steps))
    return ExploreOutcome(True, log.examples, time.monotonic() - start)
