"""Bounded waits: poll a condition with a deadline, never an unbounded `while True: sleep()`."""

from __future__ import annotations

import time
from typing import Callable, TypeVar

from harness.errors import HarnessError, WaitTimeout

__all__ = ["wait_until"]

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T],
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
        time.sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, max_interval)
    elapsed = time.monotonic() - started
    detail = f"; last error: {last_exc!r}" if last_exc else ""
    raise WaitTimeout(
        f"timed out after {elapsed:.1f}s and {attempts} attempts waiting for {what}{detail}",
        attempts=attempts,
        elapsed=elapsed,
    ) from last_exc
