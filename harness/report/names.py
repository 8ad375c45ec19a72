"""How a person reads a scenario's pytest node id: `scenarios.test_x::test_a_worker_s_job_ends[asyncio-sigstop]`
is the scenario `A worker's job ends` with the parameters `sigstop`. The anyio backend (`asyncio`) every async
scenario runs on is noise and left out."""
from __future__ import annotations

import re

_BACKENDS = ("asyncio", "trio")
_POSSESSIVE = re.compile(r"(?<=\w)_s_")  # test_a_worker_s_job: an apostrophe a function name cannot hold


def readable_name(nodeid: str) -> str:
    """The test function's name as a sentence: `test_a_worker_s_job_ends` -> `A worker's job ends`."""
    function = nodeid.rsplit("::", 1)[-1].split("[", 1)[0].removeprefix("test_")
    words = _POSSESSIVE.sub("'s_", function).replace("_", " ").strip()
    return words[:1].upper() + words[1:]


def readable_params(nodeid: str) -> str:
    """The parameter id without the anyio backend: `[asyncio-harness-from_seq]` -> `harness-from_seq`, `[asyncio]` -> ``."""
    if not nodeid.endswith("]") or "[" not in nodeid.rsplit("::", 1)[-1]:
        return ""
    params = nodeid.rsplit("::", 1)[-1].split("[", 1)[1][:-1]
    for backend in _BACKENDS:
        if params == backend:
            return ""
        params = params.removeprefix(f"{backend}-")
    return params


def pytest_nodeid(nodeid: str) -> str:
    """A report's node id (JUnit's dotted module and class) as pytest takes it on the command line:
    `scenarios.test_x.TestC::test_y[p]` -> `scenarios/test_x.py::TestC::test_y[p]`."""
    dotted, sep, function = nodeid.partition("::")
    parts = dotted.split(".")
    module = next((i for i, part in enumerate(parts) if part.startswith("test_")), None)
    if not sep or dotted.endswith(".py") or module is None:
        return nodeid
    return "::".join(["/".join(parts[:module + 1]) + ".py", *parts[module + 1:], function])
