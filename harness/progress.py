"""The lines a person reads while `harness run` goes: a header, the stack's start-up, one line per scenario
as it ends, a line for a scenario still running, and a closing summary with each failure's reason and
the commands to run it again. Pure: plain data (the pytest plugin's progress events, harness/pytest_plugin.py
PROGRESS_FILE; the run's summary) in, `rich.text.Text` lines out (styles show on a terminal only)."""
from __future__ import annotations

import json
import shlex
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.text import Text

from harness.report import describe_counts
from harness.report.summary import readable_name

__all__ = ["closing", "first_false", "header", "live_line", "read_checks", "readable", "reason", "rerun_command",
           "scenario_line", "shorten", "suite_of"]

# verdict -> (label, style); the labels line up
_VERDICTS = {"pass": ("pass", "green"), "fail": ("FAIL", "bold red"), "unknown": ("UNKNOWN", "bold yellow"),
             "not_applicable": ("n/a", "dim")}
_WIDTH = max(len(label) for label, _ in _VERDICTS.values())
UNKNOWN_LISTED = 10  # a stack that never started leaves every scenario unknown: the first few say why
NAME_MAX, DETAIL_MAX = 60, 100  # cut with "...": a line per scenario stays a line (paths and commands never are)
# evidence fields that identify rather than explain (a run id, a consumer's name, a clock reading)
_NOISE = {"valid", "key", "checked", "run_id", "consumer", "conn", "wall", "previous_wall", "previous_conn",
          "connections", "failures", "failure_count", "counterexample"}


def suite_of(nodeid: str) -> str:
    """A pytest node id's suite: `scenarios/test_run_stuck.py::test_x[p]` -> `run_stuck`."""
    return Path(nodeid.split("::", 1)[0]).stem.removeprefix("test_")


def readable(nodeid: str, limit: int = 0) -> str:
    """`...::test_seq_gap_stops_the_outbox[asyncio-pause]` -> `seq gap stops the outbox [pause]`; `limit`: the
    name (not its parameters, which tell a test's cases apart) cut to that length."""
    name, params = readable_name(nodeid)
    text = name.removeprefix("test_").replace("_", " ")
    text = shorten(text, limit) if limit else text
    return f"{text} [{params}]" if params else text


def shorten(text: str, limit: int) -> str:
    """`text` on one line, cut at `limit` with `...`."""
    text = " ".join(text.split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def reason(entry: Mapping[str, Any]) -> str:
    """Why an invariant did not hold, in a few words: its `problem` or `reason`, else the counterexample's
    first few short fields (`seq=5 last_seq=9 missing=[[5, 5]]`)."""
    example = entry.get("counterexample")
    where: Mapping[str, Any] = example if isinstance(example, Mapping) else entry
    said = where.get("problem") or entry.get("problem") or where.get("reason") or entry.get("reason")
    if said:
        return str(said)
    fields = [f"{key}={json.dumps(value, default=str)}" for key, value in where.items() if key not in _NOISE
              and value not in (None, [], {}, "") and len(json.dumps(value, default=str)) <= 40]
    return " ".join(fields[:3])


def first_false(scenario: Mapping[str, Any]) -> tuple[str, Any, str] | None:
    """The first invariant of a scenario's checks (checks.json, or its summary entry) that failed, else the
    first undecided one, leaving out verdicts the scenario expected: (name, verdict, reason)."""
    checks = scenario.get("checks")
    if not isinstance(checks, Mapping):
        return None
    expected = scenario.get("expected") or {}
    off = [(name, entry) for name, entry in checks.items() if isinstance(entry, Mapping)
           and entry.get("valid") is not True and (name not in expected or expected[name] != entry.get("valid"))]
    chosen = next(((n, e) for n, e in off if e.get("valid") is False), off[0] if off else None)
    if chosen is None:
        return None
    name, entry = chosen
    return name, entry.get("valid"), reason(entry)


def _why(verdict: str, message: str, checks: Mapping[str, Any] | None) -> Text:
    """What to say after a scenario that did not pass: its first false invariant, else pytest's message."""
    if verdict == "pass":
        return Text()
    found = first_false(checks) if checks else None
    if found is not None:
        name, valid, why = found
        return Text.assemble((name, "bold"), (" ✗ " if valid is False else " ? ", "red" if valid is False else "yellow"),
                             shorten(why, DETAIL_MAX))
    first = next((line.strip() for line in message.splitlines() if line.strip()), "")
    first = first.split("not applicable:", 1)[-1] if verdict == "not_applicable" else first
    return Text(shorten(first.removeprefix("AssertionError: "), DETAIL_MAX))


def scenario_line(event: Mapping[str, Any], checks: Mapping[str, Any] | None) -> Text:
    """`[37/50] FAIL    run_stuck  seq gap stops the outbox  gapless ✗ seq=5 missing=[[5, 5]]  4.2 s`: a
    scenario's end event, with its checks.json when it wrote one."""
    label, style = _VERDICTS.get(event["verdict"], (event["verdict"], "bold"))
    of = str(event.get("total", "?"))
    line = Text.assemble(f"[{event.get('index', '?'):>{len(of)}}/{of}] ", (label.ljust(_WIDTH), style), " ",
                         (suite_of(event["nodeid"]), "cyan"), "  ", readable(event["nodeid"], NAME_MAX))
    why = _why(event["verdict"], event.get("message", ""), checks)
    if why.plain:
        line.append("  ")
        line.append_text(why)
    line.append(f"  {event.get('seconds', 0):.1f} s", style="dim")
    return line


def read_checks(path: str | None) -> dict[str, Any] | None:
    """A scenario's checks.json, when it wrote one that can be read."""
    try:
        data = json.loads(Path(path).read_text()) if path else None
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def live_line(event: Mapping[str, Any]) -> Text | None:
    """The line of one progress event (None: nothing to say); a scenario's end reads its checks.json."""
    kind = event.get("event")
    if kind == "end":
        return scenario_line(event, read_checks(event.get("checks_file")) if event["verdict"] != "pass" else None)
    if kind == "collected":
        return Text(f"collected {event['count']} scenario(s)")
    if kind == "component":
        return Text.assemble("  stack: ", (str(event["name"]), "bold"), f" up in {event['seconds']:.1f} s")
    if kind == "stack":
        return Text(f"  stack ready in {event['seconds']:.1f} s", style="green")
    if kind == "running":
        return Text.assemble(("  ... still running: ", "yellow"), (suite_of(event["nodeid"]), "cyan"), "  ",
                             readable(event["nodeid"], NAME_MAX), f"  {event['seconds']:.0f} s")
    return None


def header(suites: list[str], keyword: str | None, service: str, report: Path) -> list[Text]:
    """What the run is about to do: its suites (none named: every one), the service under test, the report."""
    chosen = f"{len(suites)} suite(s): {', '.join(suites)}" if suites else "every suite"
    return [Text.assemble(("harness run", "bold"), f": {chosen}", f"; -k {shlex.quote(keyword)}" if keyword else ""),
            Text(f"  service under test: {service}"),
            Text(f"  report folder: {report}")]


def rerun_command(scenario: Mapping[str, Any], options: list[str]) -> str:
    """`harness run -s SUITE -k TEST OPTIONS...`: the scenario's test again (each of its parameters), with a
    fresh report."""
    test = readable_name(scenario["nodeid"])[0]
    return shlex.join(["harness", "run", "-s", scenario["suite"], "-k", test, *options])


def closing(summary: dict[str, Any], folder: Path, options: list[str]) -> list[Text]:
    """The run's verdict and counts, each scenario that failed (and the first few not judged) with its reason
    and the commands to run it again (`options`: the run's own, for `harness run`), then where the report is."""
    verdict = summary["verdict"]
    style = {"pass": "bold green", "fail": "bold red"}.get(verdict, "bold yellow")
    lines = [Text.assemble((verdict.upper(), style), f" in {summary.get('seconds', 0):.0f} s: {describe_counts(summary)}")]
    if summary.get("interrupted"):
        lines.append(Text(f"  interrupted: {summary['interrupted']}; {folder.parent / 'latest'} not moved",
                          style="yellow"))
    failed = [s for s in summary["scenarios"] if s["verdict"] == "fail"]
    unknown = [s for s in summary["scenarios"] if s["verdict"] == "unknown"]
    for scenario in failed + unknown[:UNKNOWN_LISTED]:
        label, style = _VERDICTS[scenario["verdict"]]
        line = Text.assemble((label, style), " ", (scenario["suite"], "cyan"), "  ", readable(scenario["nodeid"]), ": ")
        line.append_text(_why(scenario["verdict"], scenario.get("message", ""), scenario))
        lines.append(line)
        if scenario.get("replay"):
            lines.append(Text(f"    replay: {scenario['replay']}"))
        if scenario["verdict"] == "fail":
            lines.append(Text(f"    rerun:  {rerun_command(scenario, options)}"))
    if len(unknown) > UNKNOWN_LISTED:
        lines.append(Text(f"  ... and {len(unknown) - UNKNOWN_LISTED} more not judged (the report lists them)"))
    lines += [Text(f"report: {folder / 'index.html'}"), Text(f"pytest output: {folder / 'pytest.log'}", style="dim")]
    return lines
