"""How a person reads a scenario's name: summary.json's `name` (the test function's, e.g.
`test_a_worker_s_job_ends`) as a sentence, `A worker's job ends`; its `params` are shown as they are."""
from __future__ import annotations

import re

from harness.report.summary import readable_name

__all__ = ["params", "title"]

_POSSESSIVE = re.compile(r"(?<=\w)_s_")  # test_a_worker_s_job: an apostrophe a function name cannot hold


def title(scenario: dict[str, str]) -> str:
    """The scenario's test name as a sentence: `test_a_worker_s_job_ends` -> `A worker's job ends`."""
    name = scenario.get("name") or readable_name(scenario["nodeid"])[0]
    words = _POSSESSIVE.sub("'s_", name.removeprefix("test_")).replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def params(scenario: dict[str, str]) -> str:
    """Its parameters' id without the async backend (`harness-from_seq`), "" when it has none."""
    return scenario["params"] if "params" in scenario else readable_name(scenario["nodeid"])[1]
