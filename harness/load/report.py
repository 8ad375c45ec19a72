"""`reports/<time>/load/`: our summary.json and an index.html a person reads (the plots, the verdict, a
table per phase), beside Locust's own CSV, HTML and JSON and the judged history (`harness check` reads
the folder as a scenario's)."""
from __future__ import annotations

import html
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

__all__ = ["write_report"]

_COLUMNS = ("phase", "start_s", "end_s", "live_frames", "p50", "p95", "p99", "max", "p95_class", "p99_class",
            "catch_up_frames", "reconnects")


def write_report(out: Path, summary: Mapping[str, Any]) -> Path:
    (out / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    page = out / "index.html"
    page.write_text(_page(summary))
    return page


def _cell(value: Any) -> str:
    return "-" if value is None else html.escape(str(value))


def _classes(classes: Any) -> str:
    return ", ".join(f"{n} {html.escape(str(name))}" for name, n in (classes or {}).items()) or "-"


def _page(s: Mapping[str, Any]) -> str:
    verdict = s["verdict"]
    colour = {"pass": "#1a7f37", "fail": "#cf222e"}.get(verdict, "#9a6700")
    reasons = "".join(f"<li>{html.escape(r)}</li>" for r in s.get("reasons", []))
    rows = "".join("<tr>" + "".join(f"<td>{_cell(row.get(c))}</td>" for c in _COLUMNS) + "</tr>"
                   for row in s.get("phases", []))
    faults = "".join(f"<li>{html.escape(json.dumps(f))}</li>" for f in s.get("faults", []))
    plots = "".join(f'<p><img src="{html.escape(name)}" alt="{html.escape(key)}"></p>'
                    for key, name in s.get("plots", {}).items())
    invariants = html.escape(json.dumps(s.get("invariants"), default=str))
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>harness load: {html.escape(verdict)}</title>
<style>body{{font-family:sans-serif;max-width:1000px;margin:1em auto}}td,th{{padding:2px 8px;text-align:right}}
table{{border-collapse:collapse}}tr:nth-child(even){{background:#f4f4f4}}</style></head><body>
<h1>Load: <span style="color:{colour}">{html.escape(verdict)}</span> (exit {s["exit_code"]})</h1>
<p><code>{html.escape(s["command"])}</code></p>
<p>Gate: p95 and p99 of the live lag in the <b>{html.escape(s["gate"])}</b> class (runbook: normal &lt; 100 ms,
warning 100-500 ms, critical &gt; 500 ms). Live frames of every worker by class: {_classes(s.get("classes"))};
the generator's CPU warning: {"yes" if s.get("cpu_warning") else "no"}.</p>
<ul>{reasons}</ul>
<p>Invariants (checks.json): {invariants}</p>
<h2>Phases</h2>
<table><tr>{"".join(f"<th>{c}</th>" for c in _COLUMNS)}</tr>{rows}</table>
<h2>Faults</h2><ul>{faults or "<li>none</li>"}</ul>
<h2>Plots</h2>{plots}
<p>Locust's own report: <a href="locust.html">locust.html</a>, <a href="locust_stats.csv">locust_stats.csv</a>,
<a href="locust.json">locust.json</a>; the judged history: <a href="checks.json">checks.json</a>.</p>
</body></html>
"""
