from __future__ import annotations

import io
import json

from reference_impl.logs import Logger, format_line, format_time


def test_key_order_with_run_id() -> None:
    line = format_line(epoch=1700000000.25, msg="stream-run", component="stream-run", service="api",
                       level="info", run_id="r-1", fields={"fromSeq": 5, "cursor": 5})
    assert list(json.loads(line)) == ["time", "runId", "msg", "component", "service", "level", "timestamp",
                                      "fromSeq", "cursor"]


def test_key_order_without_run_id() -> None:
    line = format_line(epoch=0.0, msg="m", component="c", service="s", level="warn", fields={"x": 1})
    assert list(json.loads(line)) == ["time", "msg", "component", "service", "level", "timestamp", "x"]


def test_runbook_cut_picks_the_run_id() -> None:
    # The runbook counts reconnects with `cut -d' ' -f5` over stream-run lines.
    line = format_line(epoch=1700000000.0, msg="stream-run", component="stream-run", service="api",
                       level="info", run_id="abc", fields={})
    assert line.split(" ")[4] == '"abc",'


def test_time_format_has_one_space_and_millis() -> None:
    assert format_time(1700000000.123) == "2023-11-14 22:13:20.123Z"


def test_fields_cannot_override_header_keys() -> None:
    record = json.loads(format_line(epoch=0.0, msg="m", component="c", service="s", level="info",
                                    fields={"msg": "evil", "y": 2}))
    assert record["msg"] == "m" and record["y"] == 2


def test_logger_writes_one_line() -> None:
    out = io.StringIO()
    Logger("outbox-publisher", service="outbox-worker", stream=out).alert("outbox.gap", "r", expectedSeq=3, lastSeq=5)
    record = json.loads(out.getvalue())
    assert out.getvalue().count("\n") == 1
    assert (record["level"], record["runId"], record["expectedSeq"]) == ("alert", "r", 3)
