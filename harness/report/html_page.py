"""`index.html`: verdicts first, then each failure with its message and evidence. Self-contained, no JS."""
from __future__ import annotations

import json
from html import escape
from pathlib import Path
from typing import Any

from harness.report.junit_results import STAND_IN
from harness.report.summary import describe_counts
from harness.report.timeline import timeline_for_history_file

_STYLE = """
body{font:14px/1.4 system-ui,sans-serif;margin:2em;max-width:1100px}
.pass{color:#176f2c}.fail{color:#b3261e}.unknown{color:#8a5a00}.not_applicable{color:#666}
table{border-collapse:collapse;width:100%}td,th{border-bottom:1px solid #ddd;padding:4px 8px;text-align:left;overflow-wrap:anywhere}
h2{overflow-wrap:anywhere}
pre{background:#f6f6f6;padding:8px;overflow:auto;max-height:24em}
"""


def render_index(summary: dict[str, Any], folder: Path | None = None) -> str:
    """`folder`: the report folder the summary's relative paths are in."""
    parts = [f"<!doctype html><meta charset=utf-8><title>harness: {escape(summary['verdict'])}</title>",
             f"<style>{_STYLE}</style>", _headline(summary), _table(summary["scenarios"])]
    parts += [_problem(s, folder or Path()) for s in summary["scenarios"] if s["verdict"] not in ("pass", "not_applicable")]
    return "\n".join(parts)


def _headline(summary: dict[str, Any]) -> str:
    counts = describe_counts(summary)
    verdict = summary["verdict"]
    return (f"<h1 class={verdict}>{escape(verdict.upper())}</h1>"
            f"<p>{escape(counts)} &middot; {summary['seconds']} s &middot; started {escape(summary['started'])}</p>")


def _table(scenarios: list[dict[str, Any]]) -> str:
    rows = "".join(
        f"<tr><td class={s['verdict']} title='{escape(s.get('message', ''))}'>{escape(s['verdict'].replace('_', ' '))}"
        f"</td><td>{escape(s['suite'])}</td>"
        f"<td><a href='#{_anchor(s)}'>{escape(s['nodeid'])}</a>{_stand_in(s)}</td><td>{_invariants(s)}</td>"
        f"<td>{s['seconds']:.1f} s</td></tr>"
        for s in scenarios)
    head = "<tr><th>verdict</th><th>suite</th><th>scenario</th><th>invariants judged</th><th>time</th></tr>"
    return f"<table>{head}{rows}</table>"


def _stand_in(s: dict[str, Any]) -> str:
    """The faults this scenario ran as the nearest real ones, when the target could not place those asked for."""
    replaced = (s.get("properties") or {}).get(STAND_IN)
    return f"<br><small>nearest real fault: {escape(replaced)}</small>" if replaced else ""


def _invariants(s: dict[str, Any]) -> str:
    """Each judged invariant, coloured by its own verdict (true / unknown / false)."""
    classes = {True: "pass", False: "fail"}
    return " ".join(f"<span class={classes.get(entry.get('valid'), 'unknown')}>{escape(name)}</span>"
                    for name, entry in (s.get("checks") or {}).items())


def _problem(s: dict[str, Any], folder: Path) -> str:
    checks = s.get("checks")
    evidence = f"<h3>checks</h3><pre>{escape(json.dumps(checks, indent=2))}</pre>" if checks else ""
    faults = s.get("faults")
    windows = f"<h3>fault windows</h3><pre>{escape(json.dumps(faults, indent=2))}</pre>" if faults else ""
    replay = f"<p>run it again: <code>{escape(s['replay'])}</code></p>" if s.get("replay") else ""
    return (f"<h2 id='{_anchor(s)}' class={s['verdict']}>{escape(s['verdict'])}: {escape(s['nodeid'])}</h2>"
            f"<p>{escape(s['message'])}</p>{replay}{_timeline(s, folder)}{evidence}{windows}<pre>{escape(s['detail'])}</pre>")


def _timeline(s: dict[str, Any], folder: Path) -> str:
    """Fault windows and each consumer's connections and frames, from the history next to checks.json."""
    checks_file = (s.get("properties") or {}).get("checks_file")
    if s.get("faults") is None or not checks_file:
        return ""
    svg = timeline_for_history_file((folder / checks_file).parent / "history.jsonl")
    return f"<h3>timeline</h3>{svg}" if svg else ""


def _anchor(s: dict[str, Any]) -> str:
    return "".join(ch if ch.isalnum() else "-" for ch in s["nodeid"])
