"""`summary.md`: the run in a few Markdown lines for a pull request or a CI job's summary page: the
verdict, counts per suite, and each scenario that did not pass with its message and replay command."""
from __future__ import annotations

import os
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from harness.report.ci_junit import unexplained_verdict
from harness.report.summary import describe_counts

__all__ = ["STEP_SUMMARY_ENV", "publish_markdown", "render_markdown"]

STEP_SUMMARY_ENV = "GITHUB_STEP_SUMMARY"  # GitHub Actions shows this file on the job's page
_VERDICTS = ("pass", "fail", "unknown", "not_applicable")


def render_markdown(summary: dict[str, Any]) -> str:
    harness = summary.get("harness") or {}
    commit = f" · commit `{harness['commit'][:12]}`{' (changed)' if harness.get('dirty') else ''}" \
        if harness.get("commit") else ""
    target = (summary.get("configuration") or {}).get("target")
    lines = [f"## harness run: {summary['verdict'].upper()}", "",
             f"{describe_counts(summary)} · {summary['seconds']} s{commit}" + (f" · target `{target}`" if target else "")]
    why = unexplained_verdict(summary)
    lines += ["", f"> {why}"] if why else []
    lines += ["", "| suite | " + " | ".join(v.replace("_", " ") for v in _VERDICTS) + " |",
              "|---" * (len(_VERDICTS) + 1) + "|"]
    per_suite: dict[str, Counter[str]] = {}
    for s in summary["scenarios"]:
        per_suite.setdefault(s["suite"], Counter())[s["verdict"]] += 1
    lines += [f"| {_cell(suite)} | " + " | ".join(str(counts[v]) for v in _VERDICTS) + " |"
              for suite, counts in per_suite.items()]
    problems = [s for s in summary["scenarios"] if s["verdict"] in ("fail", "unknown")]
    if problems:
        lines += ["", "### Not passed", ""]
    for s in problems:
        name = s.get("name", s["nodeid"]) + (f"[{s['params']}]" if s.get("params") else "")
        first = (s.get("message") or "").strip().splitlines()[:1]
        lines.append(f"- **{s['verdict']}** {_cell(s['suite'])} `{name}`" + (f": {_cell(first[0][:300])}" if first else ""))
        lines += [f"  - replay: `{s['replay']}`"] if s.get("replay") else []
        log = (s.get("artefacts") or {}).get("service_log")
        lines += [f"  - service log: `{log}`"] if log else []
    return "\n".join(lines) + "\n"


def publish_markdown(summary: dict[str, Any], path: Path | None, env: Mapping[str, str] = os.environ) -> None:
    """The Markdown summary at `path` when given, and appended to the CI job's summary page when
    `GITHUB_STEP_SUMMARY` names one (`harness run --summary-md`; the report folder has its own summary.md)."""
    text = render_markdown(summary)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    if env.get(STEP_SUMMARY_ENV):
        with open(env[STEP_SUMMARY_ENV], "a") as page:
            page.write(text)


def _cell(text: str) -> str:
    """Text safe inside a Markdown table cell or list item."""
    return text.replace("|", "\\|").replace("\n", " ")
