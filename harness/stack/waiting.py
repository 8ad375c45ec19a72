"""Bounded waits: poll a condition with a deadline, never an unbounded `while True: sleep()`.

`wait_until` blocks (set-up code, threads); `until` is the same wait for async code, so the event loop
(and the consumers reading on it) keeps running while a scenario waits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Generator
from typing import Callable, TypeVar, cast

from harness.errors import HarnessError, WaitTimeout

__all__ = ["until", "wait_until"]

T = TypeVar("T")


def _polls(predicate: Callable[[], T | None], timeout: float, what: str, interval: float, max_interval: float,
           fatal: tuple[type[BaseException], ...]) -> Generator[float, None, T]:
    """Yields how long to sleep before the next poll; returns the first truthy value of `predicate`."""
    deadline = time.monotonic() + timeout
    started = time.monotonic()
    attempts = 0
    last_exc: BaseException | None = None
    while True:
        attempts += 1
        try:
            result = predicate()
            if result:
                return result
        except fatal:
            raise
        except Exception as exc:  # any other failure is "not ready yet"; kept for the error message
            last_exc = exc
        if time.monotonic() >= deadline:
            break
        yield min(interval, max(0.0, deadline - time.monotonic()))
        interval = min(interval * 1.5, max_interval)
    elapsed = time.monotonic() - started
    detail = f"; last error: {last_exc!r}" if last_exc else ""
    raise WaitTimeout(
        f"timed out after {elapsed:.1f}s and {attempts} attempts waiting for {what}{detail}",
        attempts=attempts,
        elapsed=elapsed,
    ) from last_exc


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.05,
    max_interval: float = 0.5,
    fatal: tuple[type[BaseException], ...] = (HarnessError,),
) -> T:
    """Call `predicate` until it returns a truthy value and return that value.

    Exceptions raised by the predicate count as "not yet" (a port not listening yet raises), except
    `fatal` ones (by default our own errors: "the process died, stop waiting"), which propagate. The
    last one is chained to the `WaitTimeout` so the cause of a failed start is not lost. The poll
    interval grows gently so a fast condition is seen within ~50 ms and a slow one does not spin.
    """
    polls = _polls(predicate, timeout, what, interval, max_interval, fatal)
    try:
        while True:
            time.sleep(next(polls))
    except StopIteration as done:
        return cast(T, done.value)  # the generator's return value


async def until(
    predicate: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    interval: float = 0.02,
    max_interval: float = 0.2,
    fatal: tuple[type[BaseException], ...] = (HarnessError,),
) -> T:
    """`wait_until` for async code: the predicate runs on the loop (keep it quick: a history view or a
    short query), and the loop runs the consumers between polls. Finer polls by default: scenarios wait
    for frames, which arrive within milliseconds."""
    polls = _polls(predicate, timeout, what, interval, max_interval, fatal)
    try:
        while True:
            await asyncio.sleep(next(polls))
    except StopIteration as done:
        return cast(T, done.value)  # the generator's return value
