"""The owner's side of control: the stack's owner (`harness up`) runs every request on its main thread,
one at a time, and heals each fault whose `--for` has run out on its own clock.

The main thread, because the owner's bookkeeping (pids, paused, the book of faults) is touched by one
thread only, and because a process it starts again is then tied to the owner's life (PR_SET_PDEATHSIG,
harness/stack/processes.py, only works from the main thread).
"""

from __future__ import annotations

import inspect
import logging
import queue
import time
from concurrent.futures import Future
from collections.abc import Callable
from typing import Any

from harness.control.actions import ACTIONS, Owned
from harness.control.book import FaultBook
from harness.control.fault_log import FaultLog
from harness.control.recorder import RECORD_ACTIONS, Recorder
from harness.control.server import REQUEST_TIMEOUT_S, ControlServer
from harness.errors import ConfigError, StackError
from harness.stack import LocalStack

__all__ = ["Owner"]

log = logging.getLogger(__name__)
TICK_S = 0.2  # how late a `--for` heal may be


class Owner:
    """Use as a context manager around the owner's lifetime: on exit every active fault is ended."""

    def __init__(self, stack: LocalStack, fault_log: FaultLog, on_change: Callable[[], object]) -> None:
        self.owned = Owned(stack, FaultBook(fault_log))
        self.recorder = Recorder(stack, fault_log.path)
        self.server = ControlServer(set(ACTIONS) | set(RECORD_ACTIONS), self.submit)
        self._jobs: queue.Queue[tuple[str, dict[str, Any], Future[Any]]] = queue.Queue()
        self._on_change = on_change  # after every request: stack.json gets the new pids

    def __enter__(self) -> Owner:
        self.owned.book.log.reset()
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.recorder.abandon()
        for line in self.owned.book.end_all():
            log.info("teardown: %s", line)

    def submit(self, action: str, args: dict[str, Any]) -> Any:
        """From a handler thread: run `action` on the main thread and wait for its result. The recorder
        touches none of the bookkeeping, so it answers on the handler thread: a `record stop` waiting for
        runs to end never holds up the main thread's `--for` heals."""
        fn = RECORD_ACTIONS[action] if action in RECORD_ACTIONS else ACTIONS[action]
        try:
            inspect.signature(fn).bind(self.owned, **args)
        except TypeError as exc:
            raise ConfigError(f"{action}: {exc}") from None
        if action in RECORD_ACTIONS:
            return fn(self.recorder, **args)
        done: Future[Any] = Future()
        self._jobs.put((action, args, done))
        return done.result(REQUEST_TIMEOUT_S)

    def run_forever(self) -> None:
        """Serve until interrupted (SIGINT, or SIGTERM from `harness down`, raise KeyboardInterrupt here)."""
        while True:
            try:
                action, args, done = self._jobs.get(timeout=TICK_S)
            except queue.Empty:
                pass
            else:
                self._run(action, args, done)
            for active in self.owned.book.expired(time.time()):
                try:
                    self.owned.book.end(active)
                except Exception as exc:  # logged as ended; the owner goes on serving
                    log.warning("healing %s failed: %s", active.label(), exc)
                self._on_change()

    def _run(self, action: str, args: dict[str, Any], done: Future[Any]) -> None:
        try:
            try:
                result = ACTIONS[action](self.owned, **args)
            finally:
                self._on_change()  # before the answer: stack.json is current when the client reads it
        except Exception as exc:  # handed to the waiting request
            done.set_exception(exc)
        except BaseException:  # interrupted: the owner is stopping
            done.set_exception(StackError(f"the stack's owner stopped during {action}"))
            raise
        else:
            done.set_result(result)
