from __future__ import annotations

import asyncio

import pytest

from reference_impl.failpoints import Action, FailpointError, FailpointSpecError, Registry, parse_action, parse_spec


def test_parse_spec_with_counts_and_sleep() -> None:
    armed = parse_spec("outbox.after_publish=1*crash; stream.after_backfill=sleep(250);")
    assert armed == {
        "outbox.after_publish": Action("crash", 0, 1),
        "stream.after_backfill": Action("sleep", 250, None),
    }


def test_empty_spec_arms_nothing() -> None:
    assert parse_spec("") == {}
    assert parse_spec(" ; ") == {}


@pytest.mark.parametrize("text", ["off", "crash", "error", "hang", "sleep(0)", "3*error", "2*sleep(10)"])
def test_actions_round_trip(text: str) -> None:
    assert str(parse_action(text)) == text


@pytest.mark.parametrize("text", ["boom", "sleep", "sleep(-1)", "0*crash", "*crash", "sleep(1.5)", ""])
def test_bad_actions(text: str) -> None:
    with pytest.raises(FailpointSpecError):
        parse_action(text)


@pytest.mark.parametrize("spec", ["nope=crash", "outbox.after_publish", "=crash"])
def test_bad_specs(spec: str) -> None:
    with pytest.raises(FailpointSpecError):
        parse_spec(spec)


def test_count_disarms_after_n_firings() -> None:
    registry = Registry()
    registry.load("append.before_commit=2*error")
    assert registry.take("append.before_commit") == Action("error", 0, 2)
    assert registry.snapshot() == {"append.before_commit": "1*error"}
    assert registry.take("append.before_commit") is not None
    assert registry.take("append.before_commit") is None
    assert registry.snapshot() == {}


def test_off_disarms() -> None:
    registry = Registry()
    registry.load("queue.before_append=error")
    registry.set("queue.before_append", parse_action("off"))
    assert not registry.is_armed("queue.before_append")


def test_error_raises_and_hang_waits_for_a_change() -> None:
    async def scenario() -> None:
        registry = Registry()
        registry.load("outbox.before_commit=1*error;stream.after_subscribe=hang")
        with pytest.raises(FailpointError):
            await registry.fire("outbox.before_commit")
        await registry.fire("outbox.before_commit")  # disarmed: returns at once
        hung = asyncio.create_task(registry.fire("stream.after_subscribe"))
        await asyncio.sleep(0.01)
        assert not hung.done()
        registry.clear("stream.after_subscribe")
        await asyncio.wait_for(hung, 1.0)

    asyncio.run(scenario())
