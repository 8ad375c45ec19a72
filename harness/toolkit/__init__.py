"""The scenario toolkit: what a scenario is written with. `Scenario` binds one test's record to its stack
and gives it the roles (nemesis, workload, observer, runbook, checks); `views` reads what clients got."""
from __future__ import annotations

from harness.toolkit.nemesis import Nemesis
from harness.toolkit.scenario import Scenario
from harness.toolkit.sources import Database, Runbook, ServiceLogs

__all__ = ["Database", "Nemesis", "Runbook", "Scenario", "ServiceLogs"]
