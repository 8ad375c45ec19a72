"""Run a report's failed scenarios again, as they ran, and say whether each failure reproduced.

Each scenario is rerun alone (its pytest node id) from its `reproduction.json`: the same target,
infrastructure and service, the same project files (a different commit is only named: the replay runs
the checkout it is started from), and, through `HARNESS_REPLAY_OF`, the choices the test recorded (a
seed, a Hypothesis failure's shrunk schedule). The environment's own service settings are blanked so
that only the recorded ones count. The new reports land beside the old one, in
`REPORT_DIR/replay-<time>/run-<i>/` (`latest` the last one), with `replay.json` holding the verdicts.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from harness import reproduction
from harness.errors import ConfigError
from harness.pytest_plugin import OPTION_ENV
from harness.suite_runner import Progress, RunRequest, run_suites

__all__ = ["Replayed", "commit_note", "replay", "replay_exit", "reproduction_of", "select_failed"]

# the environment `harness replay` blanks: the recorded options alone choose what runs
_BLANKED = {var: "" for option, var in OPTION_ENV if option in reproduction.STACK_OPTIONS} | {"HARNESS_TARGET": ""}


@dataclass(frozen=True)
class Replayed:
    """One failed scenario of the report and its verdict in each replay."""

    nodeid: str  # as the report names it
    verdicts: tuple[str, ...]  # pass | fail | unknown | not_applicable, one per replay

    @property
    def reproduced(self) -> int:
        return self.verdicts.count("fail")

    @property
    def outcome(self) -> str:
        """`reproduced` (failed at least once), `did_not_reproduce` (passed every time), else `unknown`."""
        if self.reproduced:
            return "reproduced"
        return "did_not_reproduce" if self.verdicts and set(self.verdicts) == {"pass"} else "unknown"

    def describe(self) -> str:
        n = len(self.verdicts)
        if self.outcome == "reproduced":
            return f"reproduced {self.reproduced} of {n}"
        if self.outcome == "did_not_reproduce":
            return f"did not reproduce (0 of {n})"
        return f"unknown: not reproduced, not judged every time ({', '.join(self.verdicts)})"


def replay_exit(results: list[Replayed]) -> int:
    """0 when every failure reproduced, 1 when one did not, 2 when one could not be judged."""
    outcomes = {r.outcome for r in results}
    return 1 if "did_not_reproduce" in outcomes else 2 if "unknown" in outcomes else 0


def select_failed(report_dir: Path, name: str | None = None) -> list[dict[str, Any]]:
    """The report's failed scenarios (summary entries), or the one(s) `name` designates: a node id as
    the report shows it, its last part (`test_x[param]`), or the test's name (`test_x`: each parameter)."""
    summary_file = report_dir / "summary.json"
    try:
        scenarios: list[dict[str, Any]] = json.loads(summary_file.read_text())["scenarios"]
    except FileNotFoundError:
        raise ConfigError(f"{report_dir} is not a report folder of `harness run` (no summary.json)") from None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"cannot read {summary_file}: {exc}") from None
    failed = [s for s in scenarios if s["verdict"] == "fail"]
    if name is None:
        if not failed:
            raise ConfigError(f"no scenario failed in {report_dir}: nothing to replay")
        return failed
    named = [s for s in scenarios if name in _names(s["nodeid"])]
    if not named:
        listed = ", ".join(reproduction.short_name(s["nodeid"]) for s in failed) or "none"
        raise ConfigError(f"no scenario {name!r} in {report_dir}; its failed ones: {listed}")
    if not any(s["verdict"] == "fail" for s in named):
        raise ConfigError(f"{name} did not fail in {report_dir} (verdict {named[0]['verdict']}): nothing to reproduce")
    return [s for s in named if s["verdict"] == "fail"]


def _names(nodeid: str) -> tuple[str, ...]:
    short = reproduction.short_name(nodeid)
    return nodeid, short, short.split("[", 1)[0]


def reproduction_of(report_dir: Path, scenario: dict[str, Any]) -> dict[str, Any]:
    """The scenario's reproduction.json, found in this report folder (the path in the summary is the one
    of the machine that ran it); a service directory that is gone is an error before anything runs."""
    recorded = (scenario.get("properties") or {}).get("reproduction")
    if not recorded:
        raise ConfigError(f"{scenario['nodeid']} has no reproduction.json in {report_dir}: a report from before replays")
    data = reproduction.read(report_dir / "scenarios" / Path(recorded).parent.name / reproduction.FILE)
    service_dir = data["options"].get("service_dir")
    if service_dir and not reproduction.local_path(service_dir).is_dir():
        raise ConfigError(f"{scenario['nodeid']} ran the service from {service_dir}, which is gone (a mutant's "
                          f"temporary copy?): recreate it there or edit its reproduction.json")
    return data


def commit_note(recorded: list[dict[str, Any]], now: dict[str, Any] | None) -> str | None:
    """A line when the report ran other project files than this checkout's (the replay runs these)."""
    then = next((c for c in (d.get("commit") for d in recorded) if c), None)
    if not then or not now or (then == now and not now["dirty"]):
        return None
    return (f"note: the report ran commit {then['commit'][:12]}{' with changes' if then['dirty'] else ''}, "
            f"this checkout is {now['commit'][:12]}{' with changes' if now['dirty'] else ''}")


def replay(report_dir: Path, name: str | None, times: int, say: Callable[[str], None] = lambda _: None,
           progress: Progress = lambda _: None) -> tuple[list[Replayed], Path]:
    """Rerun the chosen failed scenarios `times` times; their verdicts and the folder of the new reports.
    `say`: progress lines for a person; `progress`: each run's progress events (harness/suite_runner.py)."""
    report_dir = report_dir.resolve()
    chosen = [(s["nodeid"], reproduction_of(report_dir, s)) for s in select_failed(report_dir, name)]
    note = commit_note([data for _, data in chosen], reproduction.project_commit())
    if note:
        say(note)
    out = report_dir / f"replay-{datetime.now():%Y%m%d-%H%M%S}"
    groups: dict[tuple[str, ...], list[tuple[str, dict[str, Any]]]] = {}
    for nodeid, data in chosen:  # one pytest session per set of options (a report has one, unless edited)
        groups.setdefault(tuple(reproduction.replay_args(data)), []).append((nodeid, data))
    verdicts: dict[str, list[str]] = {nodeid: [] for nodeid, _ in chosen}
    for i in range(1, times + 1):
        for g, (args, members) in enumerate(groups.items()):
            summary, folder = run_suites(RunRequest(
                reports_root=out, name=f"run-{i}" if len(groups) == 1 else f"run-{i}-{g + 1}", pytest_args=args, nodeids=tuple(data["nodeid"] for _, data in members),
                env={**_BLANKED, reproduction.REPLAY_OF_ENV: str(report_dir)}), progress)
            found = {s["nodeid"]: s["verdict"] for s in summary["scenarios"]}
            for nodeid, _ in members:
                verdicts[nodeid].append(found.get(nodeid, "unknown"))
            say(f"replay {i} of {times}: {summary['verdict']}; report: {folder / 'index.html'}")
    results = [Replayed(nodeid, tuple(v)) for nodeid, v in verdicts.items()]
    (out / "replay.json").write_text(json.dumps(
        {"of": str(report_dir), "times": times,
         "scenarios": [{**asdict(r), "outcome": r.outcome, "reproduced": r.reproduced} for r in results]}, indent=1))
    return results, out
