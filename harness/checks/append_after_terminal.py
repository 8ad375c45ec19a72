"""Invariant 7: no append is accepted after the terminal event, and each is refused as the contract says.

From the request ops (``f`` ``append`` / ``cancel`` as recorded by ``RunsClient``): an append or cancel
invoked after the terminal was certainly committed (``terminal_committed_at``: a ``cancel`` or
``RunFinished`` append completed ``ok``, a consumer received the run's ``RunFinished``, or its row's
``publishedAt``) must be refused with the contract's answer: status option
``refusal_status`` (default 409; an int or a list), and for an append an error containing option
``refusal_message`` (default ``Non-monotonic seq append``; empty: any message). An ``ok``, or any other
answer (a 400, a 409 without the message), fails; a 5xx (the service failed, its outcome unknown) is
not a refusal: undecided. No ``ok`` append may carry a seq above the terminal seq, and the snapshot's
log must hold nothing after its ``RunFinished``. An attempt with no answer (``info`` without a status,
or still pending) is undecided unless the snapshot shows nothing was appended; it never counts as a
refusal. Nothing refused as the contract says: the guard was not exercised, ``unknown``.
"""

from __future__ import annotations

from typing import Any

from harness.checks._deliveries import MAX_LISTED, run_of, terminal_committed_at
from harness.checks._result import HistoryLike, Result, failed, passed, unknown
from harness.checks.options import DEFAULT_OPTIONS, CheckOptions
from harness.model import Snapshot, TERMINAL_TYPE
from harness.history import Op, of_kind, pair_ops, records_of

NAME = "no_append_after_terminal"
APPEND_FS = ("append", "cancel")


def check(history: HistoryLike, snapshot: Snapshot | None = None, opts: CheckOptions = DEFAULT_OPTIONS) -> Result:
    statuses = frozenset(opts.refusal_status)
    message = opts.refusal_message
    records = records_of(history)
    pairs = [(i, c) for i, c in pair_ops(of_kind(records, Op)) if i.f in APPEND_FS and _run(i)]
    known_at = terminal_committed_at(records, snapshot)
    violations: list[dict[str, Any]] = []
    undecided: list[dict[str, Any]] = []
    refused = 0
    for inv, done in pairs:
        run_id = _run(inv)
        run = run_of(snapshot, run_id)
        term_seq = run.terminal_seq if run else None
        seq = _seq(done)
        if done is not None and done.type == "ok" and term_seq is not None and seq is not None and seq > term_seq:
            violations.append(_ev("append ok with a seq after the terminal", inv, done, terminal_seq=term_seq))
            continue
        if run_id not in known_at or inv.wall <= known_at[run_id]:
            continue
        status = _status(done)
        if done is not None and done.type == "ok":
            violations.append(_ev("append accepted after the terminal", inv, done, terminal_known_at=known_at[run_id]))
        elif status is None or status >= 500:
            if status is not None or not _log_ends_at_terminal(snapshot, run_id):
                undecided.append(_ev("no refusal: the outcome is unknown", inv, done))
        elif status in statuses and (inv.f == "cancel" or message in str(done.error or "")):  # type: ignore[union-attr]
            refused += 1
        else:
            violations.append(_ev("refused with another answer than the contract's", inv, done,
                                  expected_status=sorted(statuses), expected_message=message or None,
                                  error=done.error if done else None))
    violations += _log_violations(snapshot)
    if violations:
        return failed(counterexample=violations[0], violations=violations[:MAX_LISTED], refused=refused)
    if undecided:
        return unknown("appends after the terminal with unknown outcome", undecided=undecided[:MAX_LISTED],
                       refused=refused)
    if refused == 0:
        return unknown("no append after the terminal event was refused as the contract says")
    return passed(refused=refused)


def _status(done: Op | None) -> int | None:
    status = done.value.get("status") if done is not None and isinstance(done.value, dict) else None
    return status if isinstance(status, int) else None


def _log_ends_at_terminal(snapshot: Snapshot | None, run_id: str) -> bool:
    run = run_of(snapshot, run_id)
    return run is not None and run.terminal_seq is not None and max((e.seq for e in run.events), default=0) <= run.terminal_seq


def _log_violations(snapshot: Snapshot | None) -> list[dict[str, Any]]:
    out = []
    for run in snapshot.runs.values() if snapshot else ():
        term = next((e.seq for e in sorted(run.events, key=lambda e: e.seq) if e.type == TERMINAL_TYPE), None)
        after = sorted(e.seq for e in run.events if term is not None and e.seq > term)
        if after:
            out.append({"problem": "log holds events after the terminal", "run_id": run.run_id,
                        "terminal_seq": term, "seq": after[0], "after": after[:MAX_LISTED]})
    return out


def _ev(problem: str, inv: Op, done: Op | None, **extra: Any) -> dict[str, Any]:
    return {"problem": problem, "run_id": _run(inv), "f": inv.f, "invoke_index": inv.index,
            "invoke_wall": inv.wall, "type": done.type if done else None, "seq": _seq(done),
            "completed_wall": done.wall if done else None, **extra}


def _run(op: Op) -> str:
    return str(op.value.get("run_id", "")) if isinstance(op.value, dict) else ""


def _type(op: Op) -> str | None:
    return op.value.get("type") if isinstance(op.value, dict) else None


def _seq(op: Op | None) -> int | None:
    if op is None or not isinstance(op.value, dict):
        return None
    seq = op.value.get("seq")
    return int(seq) if isinstance(seq, int) else None
