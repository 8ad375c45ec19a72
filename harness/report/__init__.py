"""Reports of a harness run: results read from pytest's JUnit XML, `summary.json`, and `index.html`."""
from __future__ import annotations

from harness.report.html_page import render_index, write_report
from harness.report.junit_results import CaseResult, read_junit
from harness.report.summary import build_summary, describe_counts, exit_code

__all__ = ["CaseResult", "build_summary", "describe_counts", "exit_code", "read_junit", "render_index", "write_report"]
