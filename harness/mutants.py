"""Mutation testing of the harness itself: known-bad variants of the reference service must be killed.

Each mutant is `tests/mutants/NAME.patch`: a unified diff against `reference_impl/` (paths
`a/reference_impl/...`, applied with `patch -p1` in a copy of the repo's service) preceded by a
header of `#` lines that is its manifest:

```
# bug: one sentence: what is wrong
# pattern: the runbook pattern it reproduces
# scenario: a_test_name_in_scenarios   (one or more lines; a pytest -k term each)
# expect: a Python regex   (exactly one: why the scenario must fail, e.g. `exactly_once: False`)
--- a/reference_impl/stream.py
+++ b/reference_impl/stream.py
...
```

`run_mutant` copies `reference_impl/` into a temp dir, applies the patch, and runs pytest on the
mutant's scenarios only (`--service-dir <tmp>`, `-x`), `RUNS` times. A run kills the mutant only when a
scenario FAILED (a JUnit failure: not an error, not a stack that could not start) with a failure message
in which the `# expect:` regex is found (re.search over the message and the traceback's failing lines,
those pytest marks `>` and `E`; not the rest of the source it lists, which holds assertions that did
not fail): a scenario
that fails for another reason (a timeout, a KeyError, an unrelated assertion) proves nothing about this
bug. The verdict over the runs:
- `killed`: every run killed it for the expected reason (the only good verdict);
- `wrong_kill`: a run failed, but not for the expected reason;
- `flaky_kill`: one run killed it for the expected reason, another let it survive;
- `survived`: every scenario passed;
- `error`: the patch does not apply, the stack could not start, a setup error, a timeout, or a pytest
  exit code other than 0/1.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path

from harness.errors import ConfigError
from harness.stack.janitor import install_signal_handlers
from harness.report.junit_results import STACK_NOT_STARTED

__all__ = ["MUTANTS_DIR", "Mutant", "MutantResult", "apply_mutant", "control", "load_mutants", "parse_mutant", "run_mutant",
           "run_mutants"]

REPO = Path(__file__).resolve().parent.parent
MUTANTS_DIR = REPO / "tests" / "mutants"
REFERENCE = REPO / "reference_impl"
SUITE = REPO / "scenarios"
CHILD_STOP_S = 20.0  # a child's janitor stops its stack in a few seconds
DEFAULT_TIMEOUT_S = 240.0
RUNS = 2  # a kill must reproduce: a mutant killed once only is flaky, not killed
_KEYS = ("bug", "pattern", "scenario", "expect")


@dataclass(frozen=True)
class Mutant:
    name: str
    bug: str
    pattern: str
    scenarios: tuple[str, ...]  # pytest -k terms (test names) in scenarios/
    patch: Path | None  # None: the unpatched reference (the control run: it must survive)
    expect: str = ""  # regex the killing failure's message must match; "" only for the control

    @property
    def keyword(self) -> str:
        return " or ".join(self.scenarios)


@dataclass(frozen=True)
class MutantResult:
    name: str
    verdict: str  # killed | wrong_kill | flaky_kill | survived | error
    killed_by: str | None  # the failing scenario's node id (a kill of any kind)
    seconds: float
    detail: str  # why, for an error; the first line of the failure, for a kill
    expected: str = ""  # the mutant's `# expect:` regex
    runs: tuple[str, ...] = ()  # each run's own verdict, in order

    def to_json(self) -> dict[str, object]:
        return asdict(self)


def parse_mutant(path: Path) -> Mutant:
    """The manifest header of one patch file; a malformed one is a ConfigError naming the mutant."""
    name = path.name.removesuffix(".patch")
    try:
        lines = path.read_text().splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"mutant {name}: cannot read {path}: {exc}") from exc
    fields: dict[str, list[str]] = {key: [] for key in _KEYS}
    body_at = None
    for i, line in enumerate(lines):
        if line.startswith("--- "):
            body_at = i
            break
        if not line.strip():
            continue
        if not line.startswith("#"):
            raise ConfigError(f"mutant {name}: line {i + 1} of the header is neither a '#' comment nor the diff: {line!r}")
        key, sep, value = line.lstrip("#").strip().partition(":")
        if not sep or key.strip() not in fields or not value.strip():
            raise ConfigError(f"mutant {name}: line {i + 1}: expected '# bug|pattern|scenario|expect: text', got {line!r}")
        fields[key.strip()].append(value.strip())
    if body_at is None or not any(line.startswith("+++ ") for line in lines[body_at:]):
        raise ConfigError(f"mutant {name}: {path} holds no unified diff (no '--- a/...' / '+++ b/...' lines)")
    for key in ("bug", "pattern", "expect"):
        if len(fields[key]) != 1:
            raise ConfigError(f"mutant {name}: the header needs exactly one '# {key}:' line, found {len(fields[key])}")
    if not fields["scenario"]:
        raise ConfigError(f"mutant {name}: the header names no '# scenario:' that must kill it")
    try:
        re.compile(fields["expect"][0])
    except re.error as exc:
        raise ConfigError(f"mutant {name}: '# expect:' is not a valid regex: {exc}") from exc
    return Mutant(name, fields["bug"][0], fields["pattern"][0], tuple(fields["scenario"]), path, fields["expect"][0])


def load_mutants(directory: Path = MUTANTS_DIR, only: list[str] | None = None) -> list[Mutant]:
    mutants = [parse_mutant(p) for p in sorted(directory.glob("*.patch"))]
    if only:
        known = {m.name for m in mutants}
        unknown = [n for n in only if n not in known]
        if unknown:
            raise ConfigError(f"unknown mutant {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        mutants = [m for m in mutants if m.name in only]
    if not mutants:
        raise ConfigError(f"no mutants in {directory}")
    return mutants


def apply_mutant(mutant: Mutant, dest: Path, reference: Path = REFERENCE) -> Path:
    """Copy `reference` to `dest/reference_impl` and apply the patch; returns `dest` (the --service-dir).

    A patch that does not apply cleanly (rejects, fuzz, offsets beyond what `patch` accepts) is a
    ConfigError naming the mutant: the reference moved and the mutant must be remade.
    """
    shutil.copytree(reference, dest / "reference_impl", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    if mutant.patch is None:
        return dest
    proc = subprocess.run(["patch", "-p1", "--batch", "--forward", "--fuzz=0", "--no-backup-if-mismatch",
                           "-r", "-", "-d", str(dest), "-i", str(mutant.patch)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        out = " ".join((proc.stdout + proc.stderr).split())
        raise ConfigError(f"mutant {mutant.name}: the patch no longer applies to reference_impl/ "
                          f"(remake it): {out[:400]}")
    return dest


def run_mutant(mutant: Mutant, *, runs: int = RUNS, timeout_s: float = DEFAULT_TIMEOUT_S,
               extra_args: tuple[str, ...] = (), reference: Path = REFERENCE) -> MutantResult:
    """`runs` runs of the mutant's scenarios, stopping at the first run that is not a good kill (or, for
    the control, not a pass): one bad run decides the verdict, only a full set of good ones is `killed`."""
    t0 = time.monotonic()
    done: list[MutantResult] = []
    good = "survived" if mutant.patch is None else "killed"
    retried = False
    while len(done) < runs and (not done or done[-1].verdict == good):
        result = _run_once(mutant, timeout_s=timeout_s, extra_args=extra_args, reference=reference)
        if result.verdict == "error" and STACK_NOT_STARTED in result.detail and not retried:
            # Says nothing about the mutant (e.g. a port taken between its choice and the bind while
            # another stack starts): that run once more, then an error is an error.
            retried = True
            continue
        done.append(result)
    return _combine(mutant, done, time.monotonic() - t0)


def _combine(mutant: Mutant, done: list[MutantResult], seconds: float) -> MutantResult:
    """`done`: good runs, then at most one that is not (the runs stop there); it decides the verdict."""
    last, verdicts = done[-1], tuple(r.verdict for r in done)
    verdict, detail = last.verdict, last.detail
    if last.verdict == "survived" and len(done) > 1 and mutant.patch is not None:
        verdict, detail = "flaky_kill", f"killed in run 1, survived run {len(done)}: {done[0].detail}"
    killer = next((r for r in done if r.killed_by), last)
    return MutantResult(mutant.name, verdict, killer.killed_by, seconds, detail, mutant.expect, verdicts)


def _run_once(mutant: Mutant, *, timeout_s: float, extra_args: tuple[str, ...], reference: Path) -> MutantResult:
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix=f"mutant-{mutant.name}-") as tmp:
        root = Path(tmp)
        try:
            service_dir = apply_mutant(mutant, root / "service", reference)
        except ConfigError as exc:
            return MutantResult(mutant.name, "error", None, time.monotonic() - t0, str(exc))
        junit = root / "junit.xml"
        cmd = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-x", "-q", "-o", "junit_family=xunit1",
               f"--junitxml={junit}", str(SUITE), "-k", mutant.keyword, "--service-dir", str(service_dir),
               *extra_args]
        env = {**os.environ, "HARNESS_REPORT_DIR": str(root / "report")}
        env.pop("HARNESS_SERVICE_DIR", None)
        finished = _run_child(cmd, env, timeout_s)
        if finished is None:
            return MutantResult(mutant.name, "error", None, time.monotonic() - t0, f"timed out after {timeout_s:.0f} s")
        code, output = finished
        return _verdict(mutant, code, junit, output, time.monotonic() - t0)


_children: set[subprocess.Popen[str]] = set()
_children_lock = threading.Lock()


def _run_child(cmd: list[str], env: dict[str, str], timeout_s: float) -> tuple[int, str] | None:
    """The mutant's pytest, its exit code and output; None when it timed out. A child outlives nothing:
    on a timeout, an interrupt or any error it gets SIGTERM (its own janitor then stops its stack)."""
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    with _children_lock:
        _children.add(proc)
    try:
        output, _ = proc.communicate(timeout=timeout_s)
        return proc.returncode, output
    except subprocess.TimeoutExpired:
        return None
    finally:
        _stop_child(proc)
        with _children_lock:
            _children.discard(proc)


def _stop_child(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.communicate(timeout=CHILD_STOP_S)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()


def _stop_children() -> None:
    with _children_lock:
        live = list(_children)
    for proc in live:
        _stop_child(proc)


def _verdict(mutant: Mutant, code: int, junit: Path, output: str, seconds: float) -> MutantResult:
    tail = " | ".join(line for line in output.strip().splitlines()[-3:])
    if code == 5:
        return MutantResult(mutant.name, "error", None, seconds, f"no scenario matched -k {mutant.keyword!r}")
    if code not in (0, 1):
        return MutantResult(mutant.name, "error", None, seconds, f"pytest exit code {code}: {tail}")
    failed, errored, passed = _junit_outcomes(junit)
    if code == 0:
        if not passed:
            return MutantResult(mutant.name, "error", None, seconds, f"no scenario ran: {tail}")
        return MutantResult(mutant.name, "survived", None, seconds, f"{len(passed)} scenario(s) passed")
    # A stack that could not start, or a setup error, says nothing about the bug: it is not a kill.
    errored += [(node, _first_line(message)) for node, message, _ in failed if STACK_NOT_STARTED in message]
    failed = [f for f in failed if STACK_NOT_STARTED not in f[1]]
    if errored or not failed:
        why = errored[0][1] if errored else tail
        return MutantResult(mutant.name, "error", errored[0][0] if errored else None, seconds, f"setup error: {why}")
    node, message, text = failed[0]
    failing = [line for line in text.splitlines() if line.startswith((">", "E "))]
    verdict = "killed" if re.search(mutant.expect, "\n".join([message, *failing])) else "wrong_kill"
    return MutantResult(mutant.name, verdict, node, seconds, _first_line(message))


def _junit_outcomes(junit: Path) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]], list[str]]:
    """(failed: node, message, text), (errored: node, first line of the message), passed nodes."""
    failed: list[tuple[str, str, str]] = []
    errored: list[tuple[str, str]] = []
    passed: list[str] = []
    if not junit.is_file():
        return failed, errored, passed
    for case in ET.parse(junit).getroot().iter("testcase"):
        node = case.get("name", "?")
        failure, error = case.find("failure"), case.find("error")
        if failure is not None:
            failed.append((node, failure.get("message", ""), failure.text or ""))
        elif error is not None:
            errored.append((node, _first_line(error.get("message", ""))))
        elif case.find("skipped") is None:
            passed.append(node)
    return failed, errored, passed


def _first_line(text: str) -> str:
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:300]


def control(mutants: list[Mutant]) -> Mutant:
    """The unpatched reference on the union of the mutants' scenarios: must pass ("survive")."""
    scenarios = tuple(dict.fromkeys(s for m in mutants for s in m.scenarios))
    return Mutant("reference (control)", "none", "none", scenarios, None)


def run_mutants(mutants: list[Mutant], *, runs: int = RUNS, timeout_s: float = DEFAULT_TIMEOUT_S,
                on_result: Callable[[MutantResult], None] | None = None, jobs: int = 1,
                on_start: Callable[[Mutant], None] | None = None) -> list[MutantResult]:
    """Each mutant with its own stack, `jobs` at a time; results in the mutants' order, `on_start(mutant)` as
    each begins, `on_result(result)` as each finishes. An interrupt (Ctrl-C, SIGTERM) stops every running
    child before it propagates."""
    install_signal_handlers()
    results: dict[str, MutantResult] = {}

    def one(mutant: Mutant) -> MutantResult:
        if on_start is not None:
            on_start(mutant)
        return run_mutant(mutant, runs=runs, timeout_s=timeout_s)

    try:
        with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="mutant") as pool:
            futures = {pool.submit(one, m): m for m in mutants}
            for future in as_completed(futures):
                result = future.result()
                results[futures[future].name] = result
                if on_result is not None:
                    on_result(result)
    except BaseException:
        _stop_children()
        raise
    return [results[m.name] for m in mutants]
