"""harness.runbook: the operations runbook (`runbook.md`) as code.

One module per diagnostic, each a function returning plain data (a dataclass with `to_dict()` for
`--json`); the commands in `harness/commands/` only render it. SQL is the runbook's, verbatim where
it can be, with its `<placeholders>` as query parameters.
"""

from __future__ import annotations

from harness.runbook.alerts import AlertResult, AlertThresholds, evaluate_alerts
from harness.runbook.backlog import BacklogRow, backlog
from harness.runbook.diagnose import Diagnosis, diagnose
from harness.runbook.lag_report import LagReport, lag_report, summarise_publishes
from harness.runbook.recovery import cancel_run, restart_outbox_in_stack
from harness.runbook.runbook_check import BlockResult, check_runbook
from harness.runbook.schema_check import SchemaReport, schema_check

__all__ = [
    "AlertResult",
    "AlertThresholds",
    "BacklogRow",
    "BlockResult",
    "Diagnosis",
    "LagReport",
    "SchemaReport",
    "backlog",
    "cancel_run",
    "check_runbook",
    "diagnose",
    "evaluate_alerts",
    "lag_report",
    "restart_outbox_in_stack",
    "schema_check",
    "summarise_publishes",
]
