"""What a scenario leaves behind: its history, the DB snapshot, and the checks' verdicts with evidence.

A scenario records into a `History`, takes a `Snapshot` through the observer, and asks `judge` for a
composed verdict. Everything is written as files in the scenario's folder (`history.jsonl`,
`snapshot.json`, `checks.json`) so a failed run can be re-checked offline and the report can show it.
"""
from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.checks import CHECKERS, CheckOptions, Result, Valid, compose
from harness.model import Snapshot
from harness.errors import WaitTimeout
from harness.history import FaultWindow, History, of_kind
from harness.observer import snapshot_of, wait_for_outbox
from harness.stack import LocalStack


@dataclass
class ScenarioRecord:
    folder: Path
    history: History = field(default_factory=History)

    @property
    def checks_file(self) -> Path:
        return self.folder / "checks.json"

    def judge(self, snapshot: Snapshot, names: tuple[str, ...], opts: CheckOptions | Mapping[str, Any] | None = None,
              expect: Mapping[str, Valid] | None = None) -> Result:
        """The named invariants composed over this history and snapshot; all of it saved as files.

        `opts`: the checkers' options, or a mapping of them (a key no checker reads is a `ConfigError`).
        `expect`: the verdicts a scenario that provokes a violation on purpose asserts (e.g. `gapless:
        False` for a gapped log), recorded so that `harness check` judges them as the scenario did."""
        unjudged = sorted(set(expect or {}) - set(names))
        if unjudged:
            raise ValueError(f"expected verdicts for invariants not judged: {unjudged}")
        options = opts if isinstance(opts, CheckOptions) else CheckOptions.from_mapping(opts or {})
        checker = compose({name: CHECKERS[name] for name in names})
        result = checker(self.history, snapshot, options)
        (self.folder / "snapshot.json").write_text(json.dumps(snapshot.to_dict(), default=str))
        # judged, opts and expected: for `harness check`, which re-judges exactly this
        entry = {**_checks_entry(result, self.history), "judged": list(names), "opts": options.to_dict(),
                 "expected": dict(expect or {})}
        self.checks_file.write_text(json.dumps(entry, default=str, indent=1))
        self.save_history()
        return result

    def save_history(self) -> None:
        self.history.save(self.folder / "history.jsonl")


def explain(result: Result) -> str:
    """A short failure message: each invariant that did not pass, with its counterexample."""
    lines = []
    for name, entry in result.evidence.items():
        if entry.get("valid") is not True:
            detail = entry.get("counterexample") or entry.get("reason") or entry
            lines.append(f"{name}: {entry.get('valid')}: {json.dumps(detail, default=str)[:600]}")
    return "\n".join(lines) or "all invariants hold"


def _checks_entry(result: Result, history: History) -> dict[str, Any]:
    faults = [w.to_dict() for w in of_kind(history, FaultWindow)]
    return {"invariants": result.valid, "checks": result.evidence, "faults": faults}


# -- the judgement every scenario composes --

# What every scenario judges unless it names its own: delivery as clients saw it, checked against the
# database rows, and the service's own record (run state, metric lines) reconciled with them.
BACKFILL = ("exactly_once", "ordering", "terminal", "gapless", "outbox_converged", "no_duplicate_delivery",
            "time_travel", "content", "run_state", "metrics_agree")
DELIVERY = (*BACKFILL, "delivered_lag")  # BACKFILL alone for clients that never saw a live frame


WAIT_S = 30.0  # runs end and the outbox converges within this once the scenario's faults healed


def assert_invariants(stack: LocalStack, record: ScenarioRecord, run_ids: list[str],
                      names: tuple[str, ...] = DELIVERY, *, wait_finished: bool = True, wait_s: float = WAIT_S,
                      **opts: Any) -> Result:
    """Once the runs have ended and the outbox has converged (within a bound; ``wait_finished=False``:
    converged only, for runs kept unfinished on purpose; ``wait_s``: the bound, shorter where the
    clients already waited out the run's end), the named invariants hold over what clients got. A wait
    that times out is a failure too, but only after the judgement and its counterexamples are written:
    a stalled run is exactly when they are needed. Returns the judgement, whose evidence a scenario may
    assert more on. Scenarios call it as ``await scenario.assert_invariants(run_ids)`` (harness.toolkit)."""
    options = CheckOptions.from_mapping(opts)  # a misspelt option fails before the wait, not after
    try:
        wait_for_outbox(stack.info.dsn, run_ids, timeout=wait_s, finished=wait_finished)
        timed_out = None
    except WaitTimeout as exc:
        timed_out = exc
    snapshot = snapshot_of(stack, run_ids)
    result = record.judge(snapshot, names, options)
    if timed_out is not None:
        raise AssertionError(f"the wait for the runs' end timed out: {timed_out}\n{explain(result)}")
    assert result.valid is True, explain(result)
    return result
