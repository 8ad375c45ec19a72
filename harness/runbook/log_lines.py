"""The service's JSON log lines from a folder (`LOGS_DIR/<process>.log`), optionally the last N minutes.

Lines that are not JSON objects (a traceback, a library's stray print) are skipped, not fatal: the
runbook's `grep | jq` pipelines would skip them too. Times come from the `timestamp` field (epoch
seconds), which every line of the contract carries.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.errors import LogsError

__all__ = ["LogLine", "parse_duration", "parse_line", "read_log_lines"]

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
        value = self.obj.get("timestamp")
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


def parse_line(raw: str, file: str = "") -> LogLine | None:
    start = raw.find("{")  # tolerate `grep`'s "file:" prefix
    if start < 0:
        return None
    try:
        obj = json.loads(raw[start:])
    except ValueError:
        return None
    return LogLine(file, raw.rstrip("\n"), obj) if isinstance(obj, dict) else None


def log_files(logs_dir: Path) -> list[Path]:
    if not logs_dir.is_dir():
        raise LogsError(f"log folder {logs_dir} does not exist: pass --logs DIR (the folder with the service's"
                        " *.log files, LOGS_DIR of docs/CONTRACTS.md)")
    return sorted(logs_dir.glob("*.log"))


def iter_lines(paths: Iterable[Path]) -> Iterator[LogLine]:
    for path in paths:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for raw in handle:
                    line = parse_line(raw, path.name)
                    if line is not None:
                        yield line
        except OSError as exc:
            raise LogsError(f"cannot read {path}: {exc.strerror or exc}") from exc


def read_log_lines(logs_dir: Path, *, since_s: float | None = None, now: float | None = None,
                   msg: str | None = None) -> list[LogLine]:
    """Every JSON line of `logs_dir/*.log` (with `msg` only, when given), at most `since_s` old."""
    cutoff = None if since_s is None else (now if now is not None else time.time()) - since_s
    out = []
    for line in iter_lines(log_files(logs_dir)):
        if msg is not None and line.msg != msg:
            continue
        if cutoff is not None and (line.timestamp is None or line.timestamp < cutoff):
            continue
        out.append(line)
    out.sort(key=lambda ln: ln.timestamp or 0.0)
    return out
