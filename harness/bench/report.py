"""What `harness bench` prints and writes: figures against the issue's targets, the machine, the
command, CPU per process, and, where a target is missed, what limits it. Pure rendering: the
benchmarks produce results, this turns them into rows, a rich table and Markdown.

docs/BENCHMARKS.md is regenerated on every `--write`; the text between the notes markers (the
analysis a person wrote after profiling) is carried over from the previous file.
"""

from __future__ import annotations

import math
import os
import platform
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from harness.bench.stream_lag import LagResult
from harness.bench.throughput import ThroughputResult

__all__ = ["BenchReport", "Machine", "NOTES_END", "NOTES_START", "Row", "Target", "carry_notes", "machine_info",
           "render_markdown", "rich_table", "rows", "write"]

NOTES_START = "<!-- notes:start (kept when the file is regenerated) -->"
NOTES_END = "<!-- notes:end -->"


@dataclass(frozen=True)
class Machine:
    cores: int
    cpu_model: str
    python: str
    system: str

    def describe(self) -> str:
        return f"{self.cores} cores, {self.cpu_model}; Python {self.python}; {self.system}"


def machine_info() -> Machine:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return Machine(os.cpu_count() or 0, model, platform.python_version(), f"{platform.system()} {platform.release()}")


@dataclass(frozen=True)
class Target:
    op: str  # "<=", "<" or ">="
    value: float

    def met(self, measured: float) -> bool | None:
        if measured is None or math.isnan(measured):
            return None
        return {"<=": measured <= self.value, "<": measured < self.value, ">=": measured >= self.value}[self.op]

    def __str__(self) -> str:
        return {"<=": "≤", "<": "<", ">=": "≥"}[self.op] + f" {_num(self.value)}"


@dataclass(frozen=True)
class Row:
    bench: str
    figure: str
    value: str
    target: Target | None = None
    measured: float = math.nan  # what the target is compared with

    @property
    def verdict(self) -> str:
        if self.target is None:
            return ""
        met = self.target.met(self.measured)
        return "no data" if met is None else ("met" if met else "MISSED")


@dataclass
class BenchReport:
    machine: Machine
    date: str  # ISO 8601, UTC
    command: str
    stack: str  # BenchSettings.describe()
    lag: LagResult | None = None
    throughput: ThroughputResult | None = None
    failures: list[str] = field(default_factory=list)  # a benchmark that could not run, and why


# The targets (2 cores): p95 lag <= 10 ms at 500 events/s with 100 open streams; >= 2,000
# events/s appended and published with p95 lag under 100 ms.
LAG_P95_MS = Target("<=", 10.0)
LAG_RATE = Target(">=", 500.0 * 0.98)  # the generator must actually have produced ~500/s
TPUT_RATE = Target(">=", 2000.0)
TPUT_LAG_P95_MS = Target("<", 100.0)


def _num(x: float, unit: str = "") -> str:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    text = f"{x:,.0f}" if abs(x) >= 100 else f"{x:.1f}" if abs(x) >= 10 else f"{x:.2f}"
    return f"{text}{(' ' + unit) if unit else ''}"


def _pcts(s: Any) -> str:
    return f"{_num(s.p50)} / {_num(s.p95)} / {_num(s.p99)} / {_num(s.max)} ms" if s.count else "n/a (no samples)"


def rows(report: BenchReport) -> list[Row]:
    out: list[Row] = []
    lag = report.lag
    if lag is not None:
        p = lag.params
        b = f"stream lag ({p.streams} streams, {p.rate:.0f} ev/s)"
        out += [
            Row(b, "lag p95 (ts → client parse)", _num(lag.lag_ms.p95, "ms"), LAG_P95_MS, lag.lag_ms.p95),
            Row(b, "lag p50 / p95 / p99 / max", _pcts(lag.lag_ms)),
            Row(b, "events appended / s (achieved)", _num(lag.event_rate), LAG_RATE, lag.event_rate),
            Row(b, "frames received / s (all streams)",
                f"{_num(lag.frames_per_s)} ({_num(100 * lag.delivered_ratio)} % of expected)"),
            Row(b, "append request p50 / p95 / p99 / max", _pcts(lag.append_ms)),
            Row(b, "streams open", f"{lag.streams_open} / {p.streams}"),
        ]
    tput = report.throughput
    if tput is not None:
        b = f"throughput ({tput.params.runs} appenders)"
        streams = tput.params.streams
        out += [
            Row(b, "events appended / s", _num(tput.appended_per_s), TPUT_RATE, tput.appended_per_s),
            Row(b, "events published / s", _num(tput.published_per_s), TPUT_RATE, tput.published_per_s),
            Row(b, "publish lag p95 (ts → publishedAt, DB)", _num(tput.publish_lag_ms.p95, "ms"), TPUT_LAG_P95_MS,
                tput.publish_lag_ms.p95),
            Row(b, "publish lag p50 / p95 / p99 / max", _pcts(tput.publish_lag_ms)),
            Row(b, "outbox log lag_ms p50 / p95 / p99 / max", _pcts(tput.outbox_log_lag_ms)),
        ]
        if streams:
            out.append(Row(b, f"delivered lag p95 (ts → client parse, {streams} streams)",
                           _num(tput.delivered_lag_ms.p95, "ms"), TPUT_LAG_P95_MS, tput.delivered_lag_ms.p95))
            out.append(Row(b, "delivered lag p50 / p95 / p99 / max", _pcts(tput.delivered_lag_ms)))
        drain = f"{tput.drain_s:.2f} s" if tput.drain_s is not None else \
            f"not drained in {tput.params.drain_timeout_s:.0f} s"
        out += [
            Row(b, "append request p50 / p95 / p99 / max", _pcts(tput.append_ms)),
            Row(b, "backlog when the load stopped → drained in", f"{tput.backlog_at_stop} events → {drain}"),
        ]
    return out


def rich_table(report: BenchReport) -> Table:
    table = Table(title=f"harness bench ({report.machine.cores} cores)", header_style="bold")
    for name in ("benchmark", "figure", "measured", "target", "verdict"):
        table.add_column(name, overflow="fold")
    last = None
    for row in rows(report):
        style = {"MISSED": "bold red", "met": "green"}.get(row.verdict, "")
        bench, last = ("" if row.bench == last else row.bench), row.bench
        table.add_row(bench, row.figure, row.value, str(row.target or ""),
                      f"[{style}]{row.verdict}[/]" if style else row.verdict)
    return table


def _cpu_table(report: BenchReport) -> list[str]:
    runs = [(name, r.cpu) for name, r in (("stream lag", report.lag), ("throughput", report.throughput))
            if r is not None and r.cpu]
    if not runs:
        return []
    names: list[str] = []
    for _, cpu in runs:
        names += [n for n in cpu.get("shares", {}) if n not in names]
    lines = ["| process | " + " | ".join(f"{n} (% of one core)" for n, _ in runs) + " |",
             "|---|" + "---:|" * len(runs)]
    for n in names:
        lines.append(f"| {n} | " + " | ".join(_num(cpu["shares"][n]) if n in cpu["shares"] else "–"
                                             for _, cpu in runs) + " |")
    cores = report.machine.cores or 1
    lines.append("| other processes on the machine | " + " | ".join(
        _num(max(0.0, cpu["machine_busy_percent"] * cores - sum(cpu["shares"].values()))) for _, cpu in runs) + " |")
    lines.append(f"| **machine busy (% of all {cores} cores)** | " + " | ".join(
        f"**{_num(cpu['machine_busy_percent'])}**" for _, cpu in runs) + " |")
    return lines


def limits(report: BenchReport) -> list[str]:
    """Plain sentences: each missed target, and what the CPU figures say about it."""
    out = []
    missed = [r for r in rows(report) if r.verdict == "MISSED"]
    for r in missed:
        out.append(f"- **Missed**: {r.bench}: {r.figure} = {r.value}, target {r.target}.")
    for name, result in (("stream lag", report.lag), ("throughput", report.throughput)):
        if result is None or not result.cpu:
            continue
        cpu = result.cpu
        top = sorted(cpu["shares"].items(), key=lambda kv: -kv[1])[:4]
        busy = cpu["machine_busy_percent"]
        saturated = busy >= 90
        out.append(f"- {name}: the machine was {_num(busy)} % busy over the measured window"
                   f" ({'saturated: every process waits for a core' if saturated else 'not saturated'});"
                   f" the biggest consumers were " + ", ".join(f"{n} {_num(v)} %" for n, v in top) + ".")
    for name, result in (("stream lag", report.lag), ("throughput", report.throughput)):
        for err in (result.errors if result is not None else []):
            out.append(f"- {name}: {err}")
    out += [f"- {f}" for f in report.failures]
    if not missed and not report.failures:
        out.insert(0, "- Every target was met.")
    return out


def render_markdown(report: BenchReport, notes: str = "") -> str:
    lines = [
        "# Benchmarks",
        "",
        "End-to-end lag (event `ts` → the moment a client has parsed the SSE frame) and sustained",
        f"throughput of the reference service on the harness's local stack. Regenerated by `{report.command}`",
        "(`make bench`); only the notes section at the end is written by hand.",
        "",
        "## Run",
        "",
        f"- date: {report.date}",
        f"- command: `{report.command}`",
        f"- machine: {report.machine.describe()}",
        f"- stack: {report.stack}",
    ]
    if report.lag is not None:
        p = report.lag.params
        lines.append(f"- stream lag: {p.streams} SSE streams spread over {p.runs} runs in {p.consumer_procs}"
                     f" consumer processes; one generator process appends {p.rate:.0f} events/s in all"
                     f" (`POST /api/agents/runs/{{id}}/events`, one keep-alive connection per run, paced);"
                     f" {p.warmup_s:.0f} s warm-up dropped, {p.duration_s:.0f} s measured")
    if report.throughput is not None:
        t = report.throughput.params
        lines.append(f"- throughput: {t.runs} runs, one keep-alive connection each, appending back to back from"
                     f" {t.appender_procs} processes; {t.streams} SSE streams (one per run) measure delivered lag;"
                     f" {t.warmup_s:.0f} s warm-up dropped, {t.duration_s:.0f} s measured; then the bench waits"
                     f" (at most {t.drain_timeout_s:.0f} s) until every event is published")
    lines += ["", "## Figures against the targets", "",
              "| benchmark | figure | measured | target | verdict |", "|---|---|---|---|---|"]
    for row in rows(report):
        verdict = f"**{row.verdict}**" if row.verdict == "MISSED" else row.verdict
        lines.append(f"| {row.bench} | {row.figure} | {row.value} | {row.target or ''} | {verdict} |")
    cpu = _cpu_table(report)
    if cpu:
        lines += ["", "## CPU over the measured windows", "",
                  "Each process with its children (PostgreSQL with its backends), from /proc; `bench *` are the",
                  "load processes and the harness itself.", "", *cpu]
    lines += ["", "## Where a target is missed, and what limits it", "", *limits(report), "",
              "## Notes", "", NOTES_START, notes.strip() or "(none yet)", NOTES_END, ""]
    return "\n".join(lines)


def carry_notes(previous: str) -> str:
    """The hand-written notes of a previous BENCHMARKS.md (empty when there are none)."""
    start, end = previous.find(NOTES_START), previous.find(NOTES_END)
    if start < 0 or end < start:
        return ""
    notes = previous[start + len(NOTES_START):end].strip()
    return "" if notes == "(none yet)" else notes


def write(report: BenchReport, path: Path) -> None:
    """Render to `path`, keeping the notes of the file it replaces."""
    previous = path.read_text(encoding="utf-8") if path.exists() else ""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_markdown(report, carry_notes(previous)), encoding="utf-8")
