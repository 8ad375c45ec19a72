"""The runbook's "Check outbox state without changes": the ten started runs with the largest backlog."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from harness.runbook._db import connect, fetch_all

__all__ = ["BACKLOG_SQL", "BacklogRow", "backlog"]

BACKLOG_SQL = """SELECT
  o.runId,
  o.nextSeq,
  r.lastSeq,
  (r.lastSeq - o.nextSeq + 1) AS backlog
FROM run_outbox o
JOIN runs r ON r.id = o.runId
WHERE r.state = 'started'
ORDER BY backlog DESC
LIMIT 10"""


@dataclass(frozen=True)
class BacklogRow:
    run_id: str
    next_seq: int
    last_seq: int
    backlog: int

    def to_dict(self) -> dict[str, Any]:
        return {"runId": self.run_id, "nextSeq": self.next_seq, "lastSeq": self.last_seq, "backlog": self.backlog}


def backlog(dsn: str) -> list[BacklogRow]:
    with connect(dsn) as conn:
        rows = fetch_all(conn, BACKLOG_SQL)
    return [BacklogRow(r["runid"], int(r["nextseq"]), int(r["lastseq"]), int(r["backlog"])) for r in rows]
