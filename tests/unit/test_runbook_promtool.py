"""The runbook's alert thresholds as Prometheus rules: `promtool test rules` on reference_impl/alerts.rules.yml."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PROMTOOL = shutil.which("promtool")


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=ROOT, capture_output=True, text=True, timeout=60)


@pytest.mark.tool("promtool")  # skipped when missing; fails under CI / --strict-tools
def test_rules_file_is_valid() -> None:
    result = promtool("check", "rules", "reference_impl/alerts.rules.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 rules found" in result.stdout


@pytest.mark.tool("promtool")
def test_rules_fire_on_their_conditions_only() -> None:
    result = promtool("test", "rules", "tests/promtool/alerts.rules.test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_rules_name_metrics_the_service_exports() -> None:
    from reference_impl import metrics

    exported = metrics.render().decode()
    rules = (ROOT / "reference_impl" / "alerts.rules.yml").read_text()
    for name in ("events_inserted_total", "outbox_backlog_avg", "publish_lag_seconds_bucket",
                 "sse_stream_connects_total", "sse_streams_open"):
        assert name in rules
        family = name.removesuffix("_bucket")
        assert f"# TYPE {family} " in exported, f"{family} is not exported by reference_impl/metrics.py"
