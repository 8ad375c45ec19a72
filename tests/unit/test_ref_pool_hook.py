"""reference_impl/db.py overrides two private parts of psycopg_pool to cap its reconnect delay; pyproject
pins the versions it was written against, and this fails when an upgrade moves them."""

from __future__ import annotations

import inspect

from psycopg_pool import AsyncConnectionPool
from psycopg_pool.base import AttemptWithBackoff

from reference_impl.db import RECONNECT_DELAY_CAP_S, Pool, _CappedAttempt


def test_the_private_hooks_the_pool_overrides_still_exist() -> None:
    params = list(inspect.signature(AsyncConnectionPool._add_connection).parameters)
    assert params[:3] == ["self", "attempt", "growing"], params
    assert Pool._add_connection is not AsyncConnectionPool._add_connection
    assert "now" in inspect.signature(AttemptWithBackoff.update_delay).parameters


def test_the_capped_attempt_never_waits_longer_than_the_cap() -> None:
    attempt = _CappedAttempt(timeout=600.0)
    now = 0.0
    for _ in range(30):  # unbounded doubling would reach minutes
        attempt.update_delay(now)
        now += attempt.delay
        assert attempt.delay <= RECONNECT_DELAY_CAP_S
