"""`harness watch [RUN_ID]`: the running stack, live: faults active now, and per run its outbox and streams."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Group, RenderableType
from rich.live import Live
from rich.table import Table
from rich.text import Text

from harness.commands.output import stdout
from harness.commands.options import DURATION, Duration, JsonOpt, TargetOpt, duration, run_id as check_run_id
from harness.commands.runbook_common import emit_json, log_spec
from harness.errors import HarnessError
from harness.model import to_epoch
from harness.runbook.watch_frame import Frame, RunView, WatchSource, gather_frame
from harness.stack.supervisor import StateFiles, running_info

__all__ = ["register", "render"]

CLASS_COLORS = {"normal": "green", "warning": "yellow", "critical": "red"}


def register(app: typer.Typer) -> None:
    app.command("watch")(watch)


RunIdArg = Annotated[Optional[str], typer.Argument(callback=check_run_id,
                                                   help="Watch this run only (default: the active runs, ten at most).")]


def watch(run_id: RunIdArg = None,
          once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
          interval: Annotated[float, typer.Option(parser=duration, metavar=DURATION,
                                                  help="Time between refreshes (at least 200ms).")] = Duration("1s"),
          target: TargetOpt = None, json_: JsonOpt = False) -> None:
    """Faults active now, then per run: state, lastSeq, nextSeq, backlog, publish lag and its class, open
    streams, heartbeats and the verdict `harness diagnose` would give. Ctrl-C quits.

    `--once` prints one frame and exits; `--json` prints one frame as JSON, for scripts.
    Exit 0 (also on Ctrl-C); 1: no stack is up; 2: RUN_ID does not exist.
    """
    if interval < 0.2:
        raise typer.BadParameter("refreshing more often than every 200ms would load the stack", param_hint="--interval")
    source = _source(target)
    frame = gather_frame(source, run_id)  # an unknown RUN_ID fails here, as one line
    if json_:
        emit_json(frame.to_dict())
        return
    if once:
        stdout.print(render(frame, live=False))
        return
    try:
        with Live(render(frame), console=stdout, auto_refresh=False) as live:
            while True:
                time.sleep(interval)
                frame = _next_frame(source, run_id, frame)
                live.update(render(frame), refresh=True)
    except KeyboardInterrupt:
        pass  # Ctrl-C is how a watch ends: exit 0, the last frame stays on the terminal


def _source(target: Path | None) -> WatchSource:
    files = StateFiles.default()
    info = running_info(files, "`harness up --detach`, then `harness watch`")
    metrics = tuple(f"{url.rstrip('/')}/metrics" for url in info.api_direct_urls or (info.api_direct_url,))
    return WatchSource(info.dsn, Path(info.logs_dir), files.fault_log, metrics, log_spec(target))


def _next_frame(source: WatchSource, run_id: str | None, previous: Frame) -> Frame:
    """The next frame; an error (the watched run deleted, ...) shows in the view instead of ending it."""
    try:
        return gather_frame(source, run_id, previous)
    except HarnessError as exc:
        return Frame(time.time(), previous.faults, previous.runs, previous.heartbeats_sent,
                     previous.last_heartbeat_at, [f"{exc} (showing the previous frame)"])


def render(frame: Frame, live: bool = True) -> RenderableType:
    """The view: faults, runs, heartbeats, then any problem reading the stack."""
    hint = "  (Ctrl-C to quit)" if live else ""
    parts: list[RenderableType] = [Text(f"harness watch  {_clock(frame.at)}{hint}", style="bold")]
    parts.append(_faults(frame) if frame.faults else Text("faults active: none", style="green"))
    parts.append(_runs(frame) if frame.runs else Text("runs: none active"))
    parts.append(Text(_heartbeats(frame, live), style="dim"))
    parts += [Text(f"problem: {p}", style="red") for p in frame.problems]
    return Group(*parts)


def _faults(frame: Frame) -> Table:
    table = Table(title="faults active now", title_style="bold red", title_justify="left", header_style="bold")
    for col in ("id", "fault", "target", "params", "since", "heals"):
        table.add_column(col)
    for f in frame.faults:
        params = " ".join(f"{k}={v}" for k, v in (f.get("params") or {}).items())
        table.add_row(str(f.get("id")), str(f.get("fault")), str(f.get("target")), params,
                      _iso_clock(f.get("at")), _heals(f.get("until"), frame.at))
    return table


def _runs(frame: Frame) -> Table:
    table = Table(title="runs", title_justify="left", header_style="bold")
    for col in ("run", "state", "lastSeq", "nextSeq", "backlog", "lag p95 (1m)", "streams", "verdict"):
        table.add_column(col, justify="right" if col in ("lastSeq", "nextSeq", "backlog") else "left")
    for r in frame.runs:
        table.add_row(r.run_id, r.state, str(r.last_seq), _num(r.next_seq), _num(r.backlog), _lag(r),
                      _streams(r, frame.at), Text(r.verdict, style="green" if r.healthy else "bold red"))
    return table


def _lag(r: RunView) -> Text:
    value = "" if r.lag_p95_ms is None else f"{r.lag_p95_ms:.0f} ms "
    return Text(f"{value}{r.lag_class}", style=CLASS_COLORS.get(r.lag_class.split(" ")[0], "dim"))


def _streams(r: RunView, now: float) -> str:
    if not r.streams:
        return "0"
    oldest = min((s.opened_at for s in r.streams if s.opened_at is not None), default=None)
    return f"{len(r.streams)}" + ("" if oldest is None else f" (oldest {now - oldest:.0f}s)")


def _heartbeats(frame: Frame, live: bool) -> str:
    if frame.heartbeats_sent is None:
        return "heartbeats: unknown (no sse_heartbeats_total on the API's /metrics)"
    sent = f"heartbeats sent (all streams, API /metrics): {frame.heartbeats_sent:.0f}"
    if frame.last_heartbeat_at is not None:
        return f"{sent}, last one {frame.at - frame.last_heartbeat_at:.0f}s ago"
    return f"{sent}, none seen since this watch began" if live else sent


def _num(value: int | None) -> str:
    return "-" if value is None else str(value)


def _clock(epoch: float) -> str:
    return datetime.fromtimestamp(epoch).strftime("%H:%M:%S")


def _iso_clock(value: object) -> str:
    when = to_epoch(value)
    return str(value) if when is None else _clock(when)


def _heals(until: object, now: float) -> str:
    when = None if until is None else to_epoch(until)
    return "when removed" if when is None else f"in {max(0.0, when - now):.0f}s"
