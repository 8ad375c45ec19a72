"""JSON-lines logging with the fixed key order of docs/CONTRACTS.md.

Order: time (contains one space), runId, msg, component, service, level, timestamp, then fields.
The order is part of the contract: the runbook's `cut -d' ' -f5` over `stream-run` lines picks the
runId only because `time` holds exactly one space and json.dumps keeps the default ", " / ": ".
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

__all__ = ["Logger", "format_line", "format_time", "set_service"]


def format_time(epoch: float) -> str:
    """UTC `YYYY-MM-DD HH:MM:SS.mmmZ`."""
    whole, millis = divmod(round(epoch * 1000), 1000)  # divmod: 0.9996 s rounds to the next second
    return time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(whole)) + f".{millis:03d}Z"


def format_line(
    *, epoch: float, msg: str, component: str, service: str, level: str,
    run_id: str | None = None, fields: dict[str, Any] | None = None,
) -> str:
    """One log line (without the newline); pure so that the key order is unit-tested."""
    record: dict[str, Any] = {"time": format_time(epoch)}
    if run_id is not None:
        record["runId"] = run_id
    record.update(msg=msg, component=component, service=service, level=level, timestamp=round(epoch, 6))
    for key, value in (fields or {}).items():
        if key not in record:  # the header keys are fixed; a field never reorders or overrides them
            record[key] = value
    return json.dumps(record, default=str)


_service_name = "reference"


def set_service(name: str) -> None:
    """Set the process-wide `service` field (the role, or SERVICE_NAME) used by every Logger."""
    global _service_name
    _service_name = name


class Logger:
    """A component's logger; one write + flush per line so `tail -f`/grep see lines as they happen."""

    def __init__(self, component: str, service: str | None = None, stream: TextIO | None = None) -> None:
        self.component = component
        self.service = service
        self._stream = stream

    def log(self, level: str, msg: str, run_id: str | None = None, **fields: Any) -> None:
        line = format_line(epoch=time.time(), msg=msg, component=self.component,
                           service=self.service or _service_name,
                           level=level, run_id=run_id, fields=fields)
        stream = self._stream or sys.stdout
        try:
            stream.write(line + "\n")
            stream.flush()
        except (OSError, ValueError):
            pass  # a closed stdout must never take the service down

    def info(self, msg: str, run_id: str | None = None, **fields: Any) -> None:
        self.log("info", msg, run_id, **fields)

    def warn(self, msg: str, run_id: str | None = None, **fields: Any) -> None:
        self.log("warn", msg, run_id, **fields)

    def error(self, msg: str, run_id: str | None = None, **fields: Any) -> None:
        self.log("error", msg, run_id, **fields)

    def alert(self, msg: str, run_id: str | None = None, **fields: Any) -> None:
        self.log("alert", msg, run_id, **fields)




class JsonHandler(logging.Handler):
    """Routes library logging (uvicorn, psycopg_pool) into our JSON lines, so every line parses."""

    _LEVELS = {logging.DEBUG: "debug", logging.INFO: "info", logging.WARNING: "warn",
               logging.ERROR: "error", logging.CRITICAL: "alert"}

    def emit(self, record: logging.LogRecord) -> None:
        fields: dict[str, Any] = {"logger": record.name}
        if record.exc_info and record.exc_info[1] is not None:
            fields["error"] = repr(record.exc_info[1])
        level = self._LEVELS.get(record.levelno, "info")
        Logger(record.name.split(".")[0]).log(level, record.getMessage(), **fields)


def install_json_logging(level: int = logging.WARNING) -> None:
    root = logging.getLogger()
    root.handlers[:] = [JsonHandler()]
    root.setLevel(level)
