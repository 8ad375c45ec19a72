"""The load's verdict and exit code: 0 pass, 1 fail, 2 inconclusive.

Pass: p95 and p99 of the live lag stay in the gated class and every invariant held. Fail: an invariant
broke (whatever else happened: the service broke it), or lag left the class on a generator that kept
up. Inconclusive: the generator hit Locust's CPU warning (its lag may be its own), too few live frames
to judge, or an invariant the checkers could not decide. The Locust process sets its own exit code
from `lag_verdict` (the lag half, over every worker); the harness adds the invariants.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from harness.load.lag_classes import ClassCounts, gate_allows

__all__ = ["EXIT", "Verdict", "lag_verdict", "load_verdict"]

EXIT = {"pass": 0, "fail": 1, "inconclusive": 2}
GATED = (95, 99)  # the percentiles the gate reads


@dataclass(frozen=True)
class Verdict:
    verdict: str  # pass | fail | inconclusive
    reasons: tuple[str, ...] = field(default_factory=tuple)

    @property
    def exit_code(self) -> int:
        return EXIT[self.verdict]


def lag_verdict(counts: ClassCounts, gate: str, cpu_warning: bool, min_samples: int) -> Verdict:
    if cpu_warning:
        return Verdict("inconclusive", ("the load generator hit Locust's CPU warning: its own lag may be in the"
                                        " figures (more --processes, or fewer users per process)",))
    if counts.total < min_samples:
        return Verdict("inconclusive", (f"{counts.total} live frames, fewer than the {min_samples} needed",))
    out = [f"p{q} live lag is {counts.percentile_class(q)}" for q in GATED
           if not gate_allows(gate, counts.percentile_class(q))]
    if out:
        return Verdict("fail", tuple(f"{line}, outside the gated class {gate}" for line in out))
    return Verdict("pass")


def load_verdict(lag: Verdict, invariants: object) -> Verdict:
    """`invariants`: the composed checks' valid (True, False or "unknown"), None when not judged."""
    if invariants is False:
        return Verdict("fail", ("an invariant broke (see checks.json)", *lag.reasons))
    if lag.verdict != "pass":
        return lag
    if invariants is not True:
        return Verdict("inconclusive", ("the invariants could not all be judged (see checks.json)",))
    return lag
