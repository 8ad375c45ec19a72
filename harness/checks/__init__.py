"""Checkers: pure functions ``check(history, snapshot, opts) -> Result`` over a history, a DB snapshot and
the ``CheckOptions`` (``harness.checks.options``).

One module per invariant of DESIGN.md; ``compose`` folds them (false > unknown > true) and turns a
checker that raises into ``unknown``. ``check_all`` is every invariant composed. ``connections`` groups a
history's records by SSE connection, as the checkers see them (the scenario toolkit's views use it too).
"""

from __future__ import annotations

from harness.checks import (
    append_after_terminal,
    content,
    delivered_lag,
    duplicates,
    exactly_once,
    gapless,
    heartbeat,
    lag,
    metrics_agree,
    ordering,
    outbox,
    run_state,
    steps,
    terminal,
    time_travel,
)
from harness.checks._result import (
    UNKNOWN,
    Checker,
    Result,
    Valid,
    compose,
    failed,
    merge_valid,
    passed,
    unknown,
)
from harness.checks.lag import LagSample, LagSummary, classify_lag, increasing_trend, lag_class
from harness.checks._deliveries import Conn, connections
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions

# In DESIGN.md's order: invariant n is the n-th entry.
CHECKERS: dict[str, Checker] = {
    exactly_once.NAME: exactly_once.check,
    ordering.NAME: ordering.check,
    time_travel.NAME: time_travel.check,
    terminal.NAME: terminal.check,
    gapless.NAME: gapless.check,
    outbox.NAME: outbox.check,
    append_after_terminal.NAME: append_after_terminal.check,
    lag.NAME: lag.check,
    heartbeat.NAME: heartbeat.check,
    duplicates.NAME: duplicates.check,
    steps.NAME: steps.check,
    content.NAME: content.check,
    metrics_agree.NAME: metrics_agree.check,
    run_state.NAME: run_state.check,
    delivered_lag.NAME: delivered_lag.check,
}
check_all: Checker = compose(CHECKERS)

__all__ = [
    "Conn",
    "connections",
    "CHECKERS",
    "CheckOptions",
    "DEFAULT_OPTIONS",
    "UNKNOWN",
    "Checker",
    "LagSample",
    "LagSummary",
    "Result",
    "Valid",
    "append_after_terminal",
    "check_all",
    "classify_lag",
    "compose",
    "duplicates",
    "exactly_once",
    "failed",
    "gapless",
    "heartbeat",
    "increasing_trend",
    "lag",
    "lag_class",
    "merge_valid",
    "ordering",
    "outbox",
    "passed",
    "terminal",
    "time_travel",
    "unknown",
]
