"""The one reader of the service's log lines (`LOGS_DIR/<process>.log`), optionally the last N minutes:
the observer, the runbook commands, the bench and the scenarios all read through it. A target's lines
(JSON or logfmt, its own names: its profile's `[logs]`) are renamed to the runbook's names as they are read.

Lines that are not JSON objects (a traceback, a library's stray print) are skipped, not fatal: the
runbook's `grep | jq` pipelines would skip them too. Times come from the `timestamp` field (epoch
seconds), which every line of the contract carries.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import LogsError
from harness.model import InsertRecord, PublishRecord, to_epoch
from harness.target.profile import LogSpec

__all__ = ["INSERTED", "PUBLISHED", "RUNBOOK_LOGS", "LogLine", "inserts_from_log_lines", "parse_duration", "parse_line",
           "publishes_from_log_lines", "read_log_lines"]

RUNBOOK_LOGS = LogSpec()  # JSON lines with the runbook's own names: the reference service's
_LOGFMT_PAIR = re.compile(r'([^\s=]+)=("(?:[^"\\]|\\.)*"|\S*)')
_RENAMED_VALUES = ("msg", "component")  # fields whose value is a name the profile may map too
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@dataclass(frozen=True)
class LogLine:
    file: str
    raw: str
    obj: dict[str, Any]

    @property
    def msg(self) -> str:
        return str(self.obj.get("msg", ""))

    @property
    def timestamp(self) -> float | None:
        """Epoch seconds: a number, a numeric string (logfmt) or an ISO-8601 time."""
        value = self.obj.get("timestamp")
        if isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                return to_epoch(value)
        return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None

    @property
    def run_id(self) -> str | None:
        value = self.obj.get("runId")
        return None if value is None else str(value)


def parse_duration(text: str) -> float:
    """`5m`, `30s`, `1h`, `250ms`, or plain seconds -> seconds."""
    match = _DURATION.match(text or "")
    if not match:
        raise LogsError(f"cannot read the duration {text!r}: use e.g. 30s, 5m, 1h or 250ms")
    return float(match.group(1)) * _UNIT_S[match.group(2)]


def parse_line(raw: str, file: str = "", spec: LogSpec = RUNBOOK_LOGS) -> LogLine | None:
    """One line in the target's format, renamed to the runbook's names (`spec`); None when it is not one."""
    obj = _json_object(raw) if spec.format == "json" else _logfmt_object(raw)
    if obj is None:
        return None
    rename = spec.to_runbook()
    if rename:
        obj = {rename.get(k, k): v for k, v in obj.items()}
        for key in _RENAMED_VALUES:
            if isinstance(obj.get(key), str):
                obj[key] = rename.get(obj[key], obj[key])
    return LogLine(file, raw.rstrip("\n"), obj)


def _json_object(raw: str) -> dict[str, Any] | None:
    start = raw.find("{")  # tolerate `grep`'s "file:" prefix
    if start < 0:
        return None
    try:
        obj = json.loads(raw[start:])
    except ValueError:
        return None
    return obj if isinstance(obj, dict) else None


def _logfmt_object(raw: str) -> dict[str, Any] | None:
    """`key=value key="quoted \"value\""` pairs; a line with none is not a log line."""
    pairs = _LOGFMT_PAIR.findall(raw)
    if not pairs:
        return None
    return {key: json.loads(value) if value.startswith('"') else value for key, value in pairs}


def log_files(logs_dir: Path, pattern: str = "*.log") -> list[Path]:
    if not logs_dir.is_dir():
        raise LogsError(f"log folder {logs_dir} does not exist: pass --logs DIR (the folder with the service's"
                        " *.log files, LOGS_DIR of docs/CONTRACTS.md)")
    return sorted(logs_dir.glob(pattern))


def iter_lines(paths: Iterable[Path], msgs: Collection[str] = (), spec: LogSpec = RUNBOOK_LOGS) -> Iterator[LogLine]:
    """The log lines of these files; with `msgs`, only lines of those messages (a substring test on the
    target's names first: a shared stack's logs grow long, and most lines are not asked for)."""
    needles = [spec.names.get(m, m) for m in msgs]
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for raw in handle:
                    if needles and not any(n in raw for n in needles):
                        continue
                    line = parse_line(raw, path.name, spec)
                    if line is not None and (not msgs or line.msg in msgs):
                        yield line
        except OSError as exc:
            raise LogsError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_log_lines(logs_dir: Path, *, since_s: float | None = None, now: float | None = None,
                   msg: str | Collection[str] | None = None, files: str = "*.log",
                   run_id: str | None = None, spec: LogSpec = RUNBOOK_LOGS) -> list[LogLine]:
    """Every line of `logs_dir/<files>` (of `msg` only, one message or several; of `run_id` only), at
    most `since_s` old, in time order; read as `spec` says (format, the target's names)."""
    cutoff = None if since_s is None else (now if now is not None else time.time()) - since_s
    msgs = () if msg is None else (msg,) if isinstance(msg, str) else tuple(msg)
    out = []
    for line in iter_lines(log_files(logs_dir, files), msgs, spec):
        if run_id is not None and line.run_id != run_id:
            continue
        if cutoff is not None and (line.timestamp is None or line.timestamp < cutoff):
            continue
        out.append(line)
    out.sort(key=lambda ln: ln.timestamp or 0.0)
    return out


# -- the service's metric lines, its own word on what it inserted and published (checked, never trusted) --

INSERTED, PUBLISHED = "metric.events_inserted", "metric.events_published"


def publishes_from_log_lines(lines: Iterable[str | LogLine]) -> tuple[PublishRecord, ...]:
    """``metric.events_published`` lines as records; other and malformed lines are skipped."""
    return tuple(rec for rec in map(_parse_publish, _parsed(lines, PUBLISHED)) if rec is not None)


def inserts_from_log_lines(lines: Iterable[str | LogLine]) -> tuple[InsertRecord, ...]:
    """``metric.events_inserted`` lines as records; other and malformed lines are skipped."""
    return tuple(rec for rec in map(_parse_insert, _parsed(lines, INSERTED)) if rec is not None)


def _parsed(lines: Iterable[str | LogLine], msg: str) -> Iterator[dict[str, Any]]:
    for item in lines:
        line = parse_line(item) if isinstance(item, str) else item
        if line is not None and line.msg == msg:
            yield line.obj


def _parse_insert(obj: dict[str, Any]) -> InsertRecord | None:
    if obj.get("runId") is None or obj.get("seq") is None:
        return None
    when = to_epoch(obj.get("timestamp")) or to_epoch(obj.get("time"))
    return InsertRecord(str(obj["runId"]), int(obj["seq"]), when or 0.0, obj.get("type"))


def _parse_publish(obj: dict[str, Any]) -> PublishRecord | None:
    # publishedAt (the publish statement's start) before the line's own timestamp: the line is written
    # after the reply crosses a possibly slowed link, while the bus may already have delivered the event.
    when = to_epoch(obj.get("publishedAt")) or to_epoch(obj.get("timestamp")) or to_epoch(obj.get("time"))
    if when is None or obj.get("runId") is None or obj.get("seq") is None:
        return None
    lag = obj.get("lag_ms")
    return PublishRecord(str(obj["runId"]), int(obj["seq"]), when, None if lag is None else float(lag), obj.get("type"))
