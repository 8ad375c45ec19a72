"""`index.html`: one self-contained page (no JavaScript) a person reads top-down.

A header (verdict, commit, service under test, stack settings, machine, command, duration); the
results by runbook section, failures first, every verdict with a mark (✓ ✗ ? –) and not colour alone;
then every scenario in its own section: what failed and why, its files, the commands that run it
again, its figure (harness/report/timeline.py), each invariant's outcome (expected violations shown
as expected), its fault windows and pytest's output; last, the invariants' glossary.
"""
from __future__ import annotations

import json
import re
from html import escape
from pathlib import Path
from typing import Any

from harness import reproduction
from harness.checks.glossary import GLOSSARY
from harness.report import artefacts
from harness.report.junit_results import STAND_IN
from harness.report.names import params, title
from harness.report.outline import MARKS, InvariantOutcome, Section, invariant_outcomes, sections
from harness.report.summary import describe_counts
from harness.report.timeline import FIGURE, render_figure

__all__ = ["render_index", "write_report"]

_STYLE = """
:root{--pass:#176f2c;--fail:#b3261e;--unknown:#8a5a00;--muted:#666;--line:#e3e3e3}
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:1.5em 2em;max-width:1180px;color:#1d1d1d}
h1{margin:.2em 0;font-size:28px}h2{margin-top:1.6em;border-bottom:2px solid var(--line);padding-bottom:.2em}
h3{margin:.2em 0;font-size:18px}
a{color:#1a5bb8;text-decoration:none}a:hover{text-decoration:underline}
code,pre{font:12.5px/1.4 ui-monospace,"DejaVu Sans Mono",monospace}
pre{background:#f6f7f9;border:1px solid var(--line);border-radius:4px;padding:8px 10px;overflow:auto;max-height:26em;white-space:pre-wrap;overflow-wrap:break-word}
table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid var(--line);padding:5px 8px;text-align:left;vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.03em}
.pass{color:var(--pass)}.fail{color:var(--fail)}.unknown,.interrupted{color:var(--unknown)}.not_applicable,.expected{color:var(--muted)}
.mark{font-weight:700;display:inline-block;width:1.1em;text-align:center}
.verdict{white-space:nowrap;font-weight:600}
.params{display:inline-block;background:#eef2f8;color:#2b3d5a;border-radius:3px;padding:0 6px;margin-left:6px;font:12px ui-monospace,monospace}
.chip{display:inline-block;border:1px solid var(--line);border-radius:10px;padding:0 7px;margin:1px 2px;font-size:12px;white-space:nowrap}
.chip.fail{border-color:#e7b6b2;background:#fdf0ef}.chip.unknown{border-color:#ecd7a7;background:#fdf7e8}
.chip.expected{background:#f3f3f3}
.meta td:first-child{color:var(--muted);white-space:nowrap;width:11em}
.muted{color:var(--muted)}
.banner{border-radius:6px;padding:10px 16px;margin-bottom:1em}
.banner.pass{background:#eaf5ec}.banner.fail{background:#fcebea}.banner.unknown,.banner.interrupted{background:#fdf5e3}
.scenario{border:1px solid var(--line);border-left:5px solid var(--line);border-radius:6px;padding:10px 16px;margin:1.2em 0}
.scenario{color:#1d1d1d}.scenario.fail{border-left-color:var(--fail)}.scenario.pass{border-left-color:var(--pass)}.scenario.unknown{border-left-color:#e0a800}
.message{background:#fdf0ef;border:1px solid #e7b6b2;color:#7a1a14}
.example{font:12.5px ui-monospace,monospace;background:#fdf0ef;padding:2px 6px;border-radius:3px}
.links a{margin-right:1em}
.inv td:first-child{width:13em}
.results td:first-child{width:5.5em}.results td:nth-child(3){width:30%}.results td:last-child{width:4.5em}.inv td:nth-child(2){width:24%}
figure{margin:.6em 0}figure img{max-width:100%;height:auto;border:1px solid var(--line)}
details summary{cursor:pointer;color:#1a5bb8}
dt{font-weight:600;margin-top:.6em}dd{margin-left:1.5em}
nav ul{columns:2;padding-left:1.2em}
"""


_RUN_FILES = ("summary.json", "summary.md", "junit.xml", "pytest.log", "configuration.json", "logs")


def write_report(folder: Path, summary: dict[str, Any]) -> Path:
    """Each scenario's figure, then `index.html` in the report folder; returns the page."""
    for scenario in summary["scenarios"]:
        scenario_dir = artefacts.scenario_folder(folder, scenario)
        if scenario_dir is not None:
            render_figure(scenario_dir)
    page = folder / "index.html"
    page.write_text(render_index(summary, folder))
    return page


def render_index(summary: dict[str, Any], folder: Path) -> str:
    """The page of the report in `folder` (links and images relative to it)."""
    grouped = sections(summary["scenarios"])
    verdict = summary["verdict"]
    parts = [f"<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
             f"<title>{MARKS.get(verdict, '?')} harness run: {escape(verdict)}</title><style>{_STYLE}</style>",
             _header(summary, folder), _contents(grouped)]
    parts += [_section_table(i, sec) for i, sec in enumerate(grouped)]
    parts.append("<h2 id=scenarios>Scenarios</h2>")
    parts += [_scenario(folder, s) for sec in grouped for s in sec.scenarios]
    parts.append(_glossary())
    return "\n".join(parts)


# -- header --

def _header(summary: dict[str, Any], folder: Path) -> str:
    verdict = summary["verdict"]
    why = f"<br>{escape(summary['interrupted'])}" if summary.get("interrupted") else ""
    banner = (f"<div class='banner {verdict}'><h1 class={verdict}><span class=mark>{MARKS.get(verdict, '?')}</span> "
              f"{escape(verdict.upper())}</h1>{escape(describe_counts(summary))}{why}</div>")
    rows = "".join(f"<tr><td>{escape(k)}</td><td>{v}</td></tr>" for k, v in _facts(summary, folder) if v)
    return f"{banner}<table class=meta>{rows}</table>"


def _facts(summary: dict[str, Any], folder: Path) -> list[tuple[str, str]]:
    """The header's rows (HTML), from summary.json's run context (empty rows are left out)."""
    config = summary.get("configuration") or {}
    stack = dict(config.get("stack") or {})
    service = (stack.pop("service_dir", None), stack.pop("service_command", None))
    harness = summary.get("harness") or {}
    return [
        ("commit", _commit(harness)),
        ("service under test", _service(config.get("target"), *service)),
        ("stack", _code(_settings({"infra": config.get("infra"), **stack}))),
        ("suites", escape(", ".join(config.get("suites") or sorted({s["suite"] for s in summary["scenarios"]})))),
        ("pytest arguments", _code(" ".join(config.get("pytest_args") or []))),
        ("machine", escape(", ".join(f"{k} {v}" for k, v in (summary.get("machine") or {}).items()))),
        ("command", _code(summary.get("command", ""))),
        ("started", escape(f"{summary['started']}, took {_duration(summary['seconds'])}")),
        ("files", _run_files(folder)),
    ]


def _run_files(folder: Path) -> str:
    """The run's own files and its service logs' folder."""
    found = "".join(f"<a href='{escape(name)}'>{escape(name)}</a>" for name in _RUN_FILES if (folder / name).exists())
    return f"<span class=links>{found}</span>" if found else ""


def _commit(harness: dict[str, Any]) -> str:
    sha = str(harness.get("commit") or "")
    dirty = " <span class=unknown>with uncommitted changes</span>" if harness.get("dirty") else ""
    version = f" (harness {escape(str(harness['version']))})" if harness.get("version") else ""
    return f"{_code(sha[:12])}{dirty}{version}" if sha else ""


def _service(target: Any, source: Any, command: Any) -> str:
    shown = f"target {_code(str(target))}" if target else "the reference service (<code>reference_impl</code>)"
    return shown + (f", from {_code(str(source))}" if source else "") + (f", run as {_code(str(command))}" if command else "")


def _settings(stack: dict[str, Any], prefix: str = "") -> str:
    """`key=value` pairs, nested ones as `intervals.heartbeat_ms=...`; unset ones left out."""
    return " ".join(_settings(v, f"{prefix}{k}.") if isinstance(v, dict) else f"{prefix}{k}={v}"
                    for k, v in stack.items() if v not in (None, "", [], {}))


# -- results by section --

def _contents(grouped: list[Section]) -> str:
    items = "".join(f"<li><a href='#section-{i}'>{escape(sec.title)}</a> {_counts(sec.counts)}</li>"
                    for i, sec in enumerate(grouped))
    return f"<nav><h2>Results by runbook section</h2><ul>{items}<li><a href='#glossary'>Invariants glossary</a></li></ul></nav>"


def _counts(counts: dict[str, int]) -> str:
    order = ("fail", "unknown", "pass", "not_applicable")
    return " ".join(f"<span class={v}><span class=mark>{MARKS[v]}</span>{counts[v]} {escape(v.replace('_', ' '))}</span>"
                    for v in order if counts.get(v))


def _section_table(i: int, sec: Section) -> str:
    rows = "".join(
        f"<tr><td class='verdict {s['verdict']}'>{_mark(s['verdict'])} {escape(s['verdict'].replace('_', ' '))}</td>"
        f"<td><a href='#{_anchor(s)}'>{escape(title(s))}</a>{_params(s)}</td>"
        f"<td>{_invariant_chips(s)}</td><td class=muted>{s['seconds']:.1f}&nbsp;s</td></tr>" for s in sec.scenarios)
    return (f"<h2 id='section-{i}'>{escape(sec.title)} <small>{_counts(sec.counts)}</small></h2>"
            f"<table class=results><tr><th>verdict</th><th>scenario</th><th>invariants</th><th>time</th></tr>{rows}</table>")


def _invariant_chips(s: dict[str, Any]) -> str:
    """The invariants that need a look, each with its mark; the ones that held as a count."""
    outcomes = invariant_outcomes(s.get("checks"), s.get("expected"))
    held = sum(1 for o in outcomes if o.outcome == "pass")
    chips = [_chip(o) for o in outcomes if o.outcome != "pass"]
    if held:
        chips.append(f"<span class='chip pass' title='invariants that held'>{_mark('pass')}{held} held</span>")
    return " ".join(chips) or "<span class=muted>none judged</span>"


def _chip(o: InvariantOutcome) -> str:
    note = " (expected)" if o.outcome == "expected" else ""
    return (f"<a class='chip {o.outcome}' href='#inv-{o.name}' title='{escape(_outcome_text(o))}'>"
            f"{_mark(o.outcome)} {escape(o.name)}{note}</a>")


# -- one scenario --

def _scenario(folder: Path, s: dict[str, Any]) -> str:
    verdict = s["verdict"]
    heading = (f"<h3 class={verdict}>{_mark(verdict)} {escape(title(s))}{_params(s)}</h3>"
               f"<div class=muted>{escape(verdict.replace('_', ' '))} &middot; {escape(s['suite'])} &middot; "
               f"{s['seconds']:.1f} s &middot; <code>{escape(s['nodeid'])}</code></div>")
    message = f"<pre class=message>{escape(s['message'])}</pre>" if s.get("message") and verdict != "pass" else ""
    parts = [heading, message, _stand_in(s), _links(folder, s), _reproduce(folder, s), _figure(folder, s),
             _invariant_table(s), _faults(s.get("faults")), _detail(s)]
    return f"<section class='scenario {verdict}' id='{_anchor(s)}'>{''.join(parts)}</section>"


def _stand_in(s: dict[str, Any]) -> str:
    """The faults this scenario ran as the nearest real ones, when the target could not place those asked for."""
    replaced = (s.get("properties") or {}).get(STAND_IN)
    return f"<p>nearest real fault: {escape(replaced)}</p>" if replaced else ""


def _links(folder: Path, s: dict[str, Any]) -> str:
    found = artefacts.links(folder, s)
    items = "".join(f"<a href='{escape(path)}'>{escape(label)}</a>" for label, path in found.items())
    return f"<p class=links>files: {items}</p>" if items else ""


def _reproduce(folder: Path, s: dict[str, Any]) -> str:
    commands = artefacts.reproduce_commands(folder, s)
    if not commands:
        return ""
    return f"<details {'open' if s['verdict'] == 'fail' else ''}><summary>reproduce</summary>" \
           f"<pre>{escape(chr(10).join(commands))}</pre></details>"


def _figure(folder: Path, s: dict[str, Any]) -> str:
    scenario_dir = artefacts.scenario_folder(folder, s)
    png = scenario_dir / FIGURE if scenario_dir is not None else None
    if png is None or not png.is_file():
        return ""
    src = png.relative_to(folder).as_posix()
    return (f"<figure><a href='{escape(src)}'><img src='{escape(src)}' loading=lazy "
            f"alt='timeline of faults and consumers, delivered lag over time and its distribution'></a></figure>")


def _invariant_table(s: dict[str, Any]) -> str:
    """A row per invariant to look at; the ones that held share one row."""
    outcomes = invariant_outcomes(s.get("checks"), s.get("expected"))
    looked_at = [o for o in outcomes if o.outcome != "pass"]
    held = [o for o in outcomes if o.outcome == "pass"]
    rows = "".join(
        f"<tr><td class='verdict {o.outcome}'>{_mark(o.outcome)} {escape(_outcome_text(o))}</td>"
        f"<td><a href='#inv-{o.name}'>{escape(o.name)}</a></td><td>{_evidence(s['checks'][o.name], o)}</td></tr>"
        for o in looked_at)
    if held:
        names = ", ".join(f"<a href='#inv-{o.name}'>{escape(o.name)}</a>" for o in held)
        evidence = escape(json.dumps({o.name: s["checks"][o.name] for o in held}, indent=1, default=str))
        rows += (f"<tr><td class='verdict pass'>{_mark('pass')} held</td><td>{names}</td>"
                 f"<td><details><summary>evidence</summary><pre>{evidence}</pre></details></td></tr>")
    return f"<table class=inv><tr><th>outcome</th><th>invariant</th><th>evidence</th></tr>{rows}</table>" if rows else ""


def _evidence(entry: Any, o: InvariantOutcome) -> str:
    """The problem and the counterexample in a line each, the checker's whole evidence folded away."""
    if not isinstance(entry, dict):
        return ""
    headline = entry.get("problem") or entry.get("reason")
    example = entry.get("counterexample")
    shown = [escape(str(headline))] if headline else []
    if isinstance(example, dict) and o.outcome != "pass":
        pairs = ", ".join(f"{k} {_value(v)}" for k, v in example.items())
        shown.append(f"counterexample: <span class=example>{escape(pairs)}</span>")
    full = escape(json.dumps(entry, indent=1, default=str))
    return "<br>".join(shown) + f"<details><summary>evidence</summary><pre>{full}</pre></details>"


def _value(v: Any) -> str:
    return f"{v:.3f}".rstrip("0").rstrip(".") if isinstance(v, float) else json.dumps(v, default=str)


def _faults(faults: Any) -> str:
    if not faults:
        return ""
    rows = "".join(
        f"<tr><td>{escape(str(f.get('name')))}</td><td>{escape(str(f.get('target')))}</td>"
        f"<td><code>{escape(json.dumps(f.get('params') or {}))}</code></td><td>{_window(f)}</td></tr>" for f in faults)
    return f"<table><tr><th>fault</th><th>on</th><th>parameters</th><th>lasted</th></tr>{rows}</table>"


def _window(f: dict[str, Any]) -> str:
    if f.get("end_wall") is None:
        return "<span class=fail>never healed</span>"
    return f"{float(f['end_wall']) - float(f['start_wall']):.2f} s"


def _detail(s: dict[str, Any]) -> str:
    return f"<details><summary>pytest output</summary><pre>{escape(s['detail'])}</pre></details>" if s.get("detail") else ""


# -- glossary and small pieces --

def _glossary() -> str:
    items = "".join(f"<dt id='inv-{name}'>{escape(name)}</dt><dd>{_backticks(text)}</dd>" for name, text in GLOSSARY.items())
    return (f"<h2 id=glossary>Invariants glossary</h2><p class=muted>What each invariant means (docs/CONTRACTS.md says "
            f"what it is judged from). ✓ held, ✗ violated, ? could not be decided (fails a gate like ✗), "
            f"<span class=expected>✓ … (expected)</span>: violated as the scenario meant it to be.</p><dl>{items}</dl>")


def _backticks(text: str) -> str:
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", escape(text, quote=False))


def _outcome_text(o: InvariantOutcome) -> str:
    if o.outcome == "expected":
        return f"violated, as expected ({o.valid})"
    if o.expected not in (None, True):
        return f"{o.valid}, expected {o.expected}"
    return {"pass": "held", "fail": "violated", "unknown": "unknown"}[o.outcome]


def _mark(verdict: str) -> str:
    return f"<span class=mark aria-hidden=true>{MARKS.get(verdict, '?')}</span>"


def _params(s: dict[str, Any]) -> str:
    shown = params(s)
    return f"<span class=params>{escape(shown)}</span>" if shown else ""


def _anchor(s: dict[str, Any]) -> str:
    return "s-" + reproduction.scenario_slug(s["nodeid"])


def _code(text: str) -> str:
    return f"<code>{escape(text)}</code>" if text else ""


def _duration(seconds: float) -> str:
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs} s" if minutes else f"{seconds:.1f} s"
