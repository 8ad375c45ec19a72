"""Generated fault schedules (Hypothesis stateful testing) against the real local stack: runs, SSE
consumers that reconnect, and faults injected and healed in generated orders; the final check of
every schedule asserts the delivery invariants. Derandomized with a small fixed budget here;
`harness explore` runs the same machine with random seeds and a larger budget."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from harness.explore import ExploreBudget, explore
from harness.stack import LocalStack

pytestmark = [pytest.mark.stack]


def test_generated_fault_schedules_keep_the_delivery_invariants(stack: LocalStack, tmp_path: Path) -> None:
    root = os.environ.get("HARNESS_REPORT_DIR")
    folder = Path(root) / "scenarios" / "generated_schedules" if root else tmp_path
    explore(stack, ExploreBudget.ci(), folder)
