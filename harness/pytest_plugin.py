"""pytest fixtures for the local stack. Loaded by pyproject's `-p harness.pytest_plugin`.

Importing this module starts nothing: stacks start lazily when a test asks for them.

Fixtures:
- `stack_config` (session): the StackConfig of the session stack; fast intervals. Override it in a
  conftest.py to change the session stack.
- `stack` (session): the shared `LocalStack`, started once per session.
- `stack_info` (session): its `StackInfo` (endpoints).
- `toxiproxy` (session): the shared stack's `ToxiproxyApi`.
- `clean_db` (function): truncates the service's tables before the test; returns the direct DSN.
- `stack_factory` (function): `stack_factory(**overrides) -> LocalStack`, a separate stack with other
  settings (`nginx="buffered"`, `api_replicas=2`, `heartbeat_ms=500`, ...), stopped after the test.
- `service_intervals` (session): the `Intervals` the session stack's service runs with.
- `scenario` (function): a `Scenario` (harness.toolkit): the test's history and judgement bound to the
  stack, with the nemesis, workload, observer and runbook as attributes; files saved for the report.
- `reproduction` (function): what the test chose at random, kept for `harness replay` and given back
  to it on a replay (harness/reproduction.py).

Under `harness run` every test gets a folder in the report with its `reproduction.json` and
`service.log` (what the logs of the stacks it used gained while it ran); the stacks' logs are in the
report's `logs/`; a failed test of a runbook section leaves `postmortem/diagnose.json` and `alerts.json`
(the runbook's view of its stack at its teardown, harness/toolkit/postmortem.py).

Tests marked `stack` get the shared stack, healed (paused processes resumed, dead ones restarted)
and with every proxy reset before they run. Tests marked `tool(NAME)` (and `nginx`, which implies
`tool("nginx")`) need that program: when it is missing they are skipped, or, with `CI` set in the
environment or `--strict-tools`, they FAIL saying what to install: a release gate never goes green
with tests left out. (toxiproxy-server and Go need no marker: without them no stack starts, and every
stack test fails with what to install.)
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator

import pytest

from harness.errors import HarnessError
from harness.report.junit_results import RUNBOOK_SECTION, STACK_NOT_STARTED, STAND_IN
from harness.report.log_slice import log_sizes, write_log_slice
from harness.reproduction import portable

if TYPE_CHECKING:  # the stack package is imported lazily: loading the plugin must stay cheap
    from harness.reproduction import ScenarioChoices
    from harness.toolkit import Scenario
    from harness.stack import Intervals, LocalStack, StackConfig, StackInfo, ToxiproxyApi
    from harness.target import TargetProfile

COLLECTION_FILE = "collection.json"  # in the report folder: what pytest collected
CONFIGURATION_FILE = "configuration.json"  # in the report folder: the target, infrastructure and session stack
# In the report folder: JSON lines `harness run` turns into its live lines while pytest runs (harness/progress.py):
# {"event": "collected", "count"}, {"event": "component", "name", "seconds"} and {"event": "stack", "seconds"}
# as the session stack starts, {"event": "start", "nodeid"}, {"event": "end", "nodeid", "verdict", "seconds",
# "message", "checks_file", "index", "total"}.
PROGRESS_FILE = "progress.jsonl"


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("harness", "harness local stack")
    group.addoption("--postgres-dsn", default=None,
                    help="use this PostgreSQL instead of an embedded one (env HARNESS_POSTGRES_DSN)")
    group.addoption("--toxiproxy-url", default=None,
                    help="use this toxiproxy server instead of starting one (env TOXIPROXY_URL)")
    group.addoption("--service-command", default=None,
                    help="the service's command (env HARNESS_SERVICE_COMMAND; default python -m reference_impl)")
    group.addoption("--service-dir", default=None,
                    help="source directory of the service, e.g. a mutant's patched copy (env HARNESS_SERVICE_DIR)")
    group.addoption("--target", default=None,
                    help="the target profile of the implementation under test (env HARNESS_TARGET; default"
                         " profiles/reference.toml); scenarios needing what it lacks are not applicable")
    group.addoption("--infra", default=None, choices=("local", "docker"),
                    help="how the stack's own PostgreSQL and toxiproxy run: local processes (default) or"
                         " containers through testcontainers (env HARNESS_INFRA; scripts/docker_setup.sh)")
    group.addoption("--nginx", default=None, choices=("off", "on", "buffered"),
                    help="nginx in front of the API of the session's stacks: on (SSE-ready), buffered (nginx's"
                         " defaults) or off (env HARNESS_NGINX; a test choosing its own stack keeps its choice)")
    group.addoption("--strict-tools", action="store_true", default=False,
                    help="a missing tool fails the tests that need it instead of skipping them (also when CI is set)")


# marker -> the runbook section its scenarios cover; the report groups results by it
RUNBOOK_SECTIONS = {
    "run_stuck": '"Run Stuck" Diagnostic Checklist',
    "rebuild_stream": '"Rebuild Stream" Recovery',
    "failure_patterns": '"Common Failure Patterns"',
    "client_flapping": '"Client Flapping" (High Reconnects)',
    "recovery": "Recovery Actions and the Manual Outbox Nudge",
    "outbox_lag": '"Outbox Lag" Diagnostic',
    "db_faults": 'Emergency Contacts "For outbox publisher failures" (DB sessions, row locks)',
    "replicas": "Outbox worker scaling (several outbox workers and API replicas)",
}
CONTRACT_SECTION = "Service contract (docs/CONTRACTS.md)"  # scenarios of no runbook section


def runbook_section(item: pytest.Item) -> str:
    """The runbook section a test covers: its first runbook marker's, else the service contract."""
    return next((RUNBOOK_SECTIONS[m.name] for m in item.iter_markers() if m.name in RUNBOOK_SECTIONS),
                CONTRACT_SECTION)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "stack: needs the real local stack (PostgreSQL, toxiproxy, service)")
    config.addinivalue_line("markers", "nginx: needs nginx in front of the API")
    config.addinivalue_line("markers", "docker: runs containers (scripts/docker_setup.sh sets the engine and the images up)")
    config.addinivalue_line("markers", f"tool(name): needs that program ({', '.join(TOOLS)}); see --strict-tools")
    config.addinivalue_line("markers", "needs(*capabilities): the target must have these (harness.target.CAPABILITIES);"
                                       " without them the scenario is reported not applicable")
    for marker, section in RUNBOOK_SECTIONS.items():
        config.addinivalue_line("markers", f"{marker}: scenarios of the runbook section {section}")
    config.addinivalue_line("markers", "stream_races: stream subscribe/backfill/gap-fill races and rolled-back appends")


def _nginx_found() -> bool:
    from harness.stack.nginx import find_nginx

    try:
        find_nginx()
    except HarnessError:
        return False
    return True


def _node_target_installed() -> bool:
    from harness.stack.paths import repo_root

    return (repo_root() / "tests" / "targets" / "node_impl" / "node_modules" / "pg").is_dir()


def _chromium_found() -> bool:
    from harness.workload.browser_consumer import chromium_executable

    return chromium_executable() is not None


def _docker_ready() -> bool:
    from harness.stack.containers import docker_problem

    return docker_problem() is None


# tool -> (is it installed?, how to install it)
TOOLS: dict[str, tuple[Callable[[], bool], str]] = {
    "patch": (lambda: shutil.which("patch") is not None, "apt-get install patch"),
    "nginx": (_nginx_found, "apt-get install nginx-light"),
    "chromium": (_chromium_found, "apt-get install chromium (Playwright drives it; no browser download)"),
    "promtool": (lambda: shutil.which("promtool") is not None, "apt-get install prometheus"),
    "tmux": (lambda: shutil.which("tmux") is not None, "apt-get install tmux"),
    "node": (lambda: shutil.which("node") is not None and _node_target_installed(),
             "apt-get install nodejs npm, then scripts/setup.sh (npm ci in tests/targets/node_impl)"),
    "docker": (_docker_ready, "an engine answering `docker info` and the local images: sudo bash scripts/docker_setup.sh"),
    "docker-compose": (lambda: shutil.which("docker-compose") is not None,
                       "apt-get install docker-compose (sudo bash scripts/docker_setup.sh installs it too)"),
}


def strict_tools(config: pytest.Config) -> bool:
    """A missing tool fails the run: `--strict-tools`, or `CI` set to anything but empty/0/false/no."""
    ci = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
    return bool(config.getoption("strict_tools", default=False)) or ci


def require_tool(name: str, *, strict: bool) -> None:
    """Return when the tool is installed; else fail the test (strict) or skip it, naming what to install."""
    if name not in TOOLS:
        pytest.fail(f"unknown tool {name!r} in a tool marker; known: {', '.join(TOOLS)}", pytrace=False)
    installed, install = TOOLS[name]
    if installed():
        return
    message = f"{name} is not installed: {install} (scripts/setup.sh does it as root)"
    if strict:
        pytest.fail(f"{message}; failing, not skipping: CI is set or --strict-tools", pytrace=False)
    pytest.skip(message)


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Scenarios the target lacks a capability for, as such: pytest itself only counts them as skipped."""
    from harness.report.junit_results import NOT_APPLICABLE

    reasons = [str(report.longrepr[2]) for report in terminalreporter.stats.get("skipped", [])
               if isinstance(report.longrepr, tuple) and NOT_APPLICABLE in str(report.longrepr[2])]
    if reasons:
        terminalreporter.write_sep("-", f"{len(reasons)} not applicable to target"
                                        f" {target_profile(terminalreporter.config).name}")
        for reason, count in Counter(r.split(NOT_APPLICABLE, 1)[1].strip() for r in reasons).most_common():
            terminalreporter.write_line(f"{count} x {reason}")
    replaced = {report.nodeid: value for reports in terminalreporter.stats.values() for report in reports
                for name, value in getattr(report, "user_properties", ()) if name == STAND_IN}
    if replaced:
        terminalreporter.write_sep("-", f"{len(replaced)} with a fault replaced by the nearest real one")
        for nodeid, value in replaced.items():
            terminalreporter.write_line(f"{nodeid}: {value}")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Under `harness run`: how many tests were collected, so that a run whose JUnit lists fewer
    (interrupted, crashed) is never taken for a complete one."""
    root = _report_root()
    if root is not None and root.is_dir():
        (root / COLLECTION_FILE).write_text(json.dumps({"collected": len(session.items)}))
        profile = target_profile(session.config)
        infra = session.config.getoption("infra", default=None) or os.environ.get("HARNESS_INFRA") or "local"
        _note_configuration(target=portable(str(profile.source)) if profile.source else profile.name, infra=infra)
    emit_progress({"event": "collected", "count": len(session.items)})


def emit_progress(event: dict[str, Any]) -> None:
    """Under `harness run`: one progress event for its live lines (a line appended at once, so the
    parent reads it while the test goes on)."""
    root = _report_root()
    if root is not None and root.is_dir():
        with open(root / PROGRESS_FILE, "a") as out:
            out.write(json.dumps(event) + "\n")


def _report_root() -> Path | None:
    """The run's report folder under `harness run`, else None."""
    root = os.environ.get("HARNESS_REPORT_DIR")
    return Path(root).resolve() if root else None


def _note_configuration(**values: Any) -> None:
    """Merge into the report's configuration.json (summary.json's `configuration` is built from it)."""
    root = _report_root()
    if root is None:
        return
    file = root / CONFIGURATION_FILE
    known = json.loads(file.read_text()) if file.is_file() else {}
    file.write_text(json.dumps({**known, **values}, indent=1))


OPTION_ENV = (("postgres_dsn", "HARNESS_POSTGRES_DSN"), ("toxiproxy_url", "TOXIPROXY_URL"),
              ("service_command", "HARNESS_SERVICE_COMMAND"), ("service_dir", "HARNESS_SERVICE_DIR"),
              ("infra", "HARNESS_INFRA"), ("nginx", "HARNESS_NGINX"))  # the target: target_profile() below
_PROFILE = pytest.StashKey["TargetProfile"]()


def target_profile(config: pytest.Config) -> TargetProfile:
    """The run's target profile (`--target`, HARNESS_TARGET, else the reference's), read once."""
    if _PROFILE not in config.stash:
        from harness.target import load_profile, reference_profile

        path = config.getoption("target", default=None) or os.environ.get("HARNESS_TARGET")
        try:
            config.stash[_PROFILE] = load_profile(path) if path else reference_profile()
        except HarnessError as exc:
            raise pytest.UsageError(str(exc)) from exc
    return config.stash[_PROFILE]


def scenario_folder(nodeid: str) -> Path | None:
    """The test's folder in the run's report (under `harness run`), else None."""
    from harness.reproduction import scenario_slug

    root = _report_root()
    return root / "scenarios" / scenario_slug(nodeid) if root else None


_COMMIT = pytest.StashKey["dict[str, Any] | None"]()
_SESSION_STACK = pytest.StashKey["LocalStack"]()  # on the config, once the shared stack started
_TEST_STACKS = pytest.StashKey["list[LocalStack]"]()  # on the item: the stacks the test used, in order
_STARTED = pytest.StashKey[float]()  # on the item: its start, epoch seconds
_LOG_SIZES = pytest.StashKey["dict[Path, int]"]()  # on the item: the shared stack's log sizes before it
_FAILED = pytest.StashKey[bool]()  # on the item: its body failed
_REPORTS = pytest.StashKey["list[pytest.TestReport]"]()  # on the item: its phases' reports, for its end event
_ENDED = pytest.StashKey[int]()  # on the config: how many tests have ended


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """The test's runbook section as a JUnit property; under `harness run`: its reproduction.json
    (harness/reproduction.py) before it runs, named in its JUnit properties for `harness replay`; the files
    it left noted after."""
    from harness import reproduction

    item.user_properties.append((RUNBOOK_SECTION, runbook_section(item)))
    folder = scenario_folder(item.nodeid)
    if folder is None:
        yield
        return
    folder.mkdir(parents=True, exist_ok=True)
    if _COMMIT not in item.config.stash:
        item.config.stash[_COMMIT] = reproduction.project_commit()
    path = reproduction.write(folder, item.nodeid, _stack_options(item.config), item.config.stash[_COMMIT])
    item.user_properties.append(("reproduction", str(path)))
    item.stash[_STARTED] = time.time()
    shared = item.config.stash.get(_SESSION_STACK, None)
    item.stash[_LOG_SIZES] = log_sizes([shared.logs_dir] if shared else [])
    emit_progress({"event": "start", "nodeid": item.nodeid})
    yield
    reproduction.note_files(path)
    emit_progress(_ended(item))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report: pytest.TestReport = outcome.get_result()  # type: ignore[attr-defined]
    if report.when == "call" and report.failed:
        item.stash[_FAILED] = True
    item.stash.setdefault(_REPORTS, []).append(report)


def phase_verdict(phases: list[tuple[str, str, str]]) -> tuple[str, str]:
    """(verdict, message) of a test from its phases' (when, outcome, message), as its JUnit entry reads
    (harness/report/junit_results.py): a failed call is `fail` (`unknown` when its stack did not start), a
    failed set-up or teardown `unknown`, a skip `not_applicable` when the target lacks a capability, else
    `unknown`."""
    from harness.report.junit_results import NOT_APPLICABLE

    for when, outcome, message in phases:
        if when == "call" and outcome == "failed":
            return ("unknown" if STACK_NOT_STARTED in message else "fail"), message
    for when, outcome, message in phases:
        if outcome == "failed":
            return "unknown", f"error in {when}: {message}"
        if outcome == "skipped":
            return ("not_applicable" if NOT_APPLICABLE in message else "unknown"), message
    return "pass", ""


def _report_message(report: pytest.TestReport) -> str:
    """The first line pytest gives for a failure (its crash line) or a skip (its reason)."""
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # a skip: (file, line, reason)
        return str(longrepr[2]).removeprefix("Skipped: ")
    crash = getattr(longrepr, "reprcrash", None)
    text = crash.message if crash is not None else str(longrepr or "")
    return next((line.strip() for line in text.splitlines() if line.strip()), "")[:500]


def _ended(item: pytest.Item) -> dict[str, Any]:
    """The end event of a test: its verdict, the how-manieth it is of the collected ones, its checks file."""
    reports = item.stash.get(_REPORTS, [])
    verdict, message = phase_verdict([(r.when or "", r.outcome, _report_message(r)) for r in reports])
    checks = next((str(v) for r in reports for k, v in r.user_properties if k == "checks_file"), None)
    item.config.stash[_ENDED] = item.config.stash.get(_ENDED, 0) + 1
    return {"event": "end", "nodeid": item.nodeid, "verdict": verdict, "message": message,
            "index": item.config.stash[_ENDED], "total": len(item.session.items),
            "seconds": round(sum(r.duration for r in reports), 2), "checks_file": checks}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_teardown(item: pytest.Item) -> Iterator[None]:
    """Before the test's fixtures end (its own stacks still up): its slice of the service logs and, when
    a runbook scenario failed, the post-mortem of the stack it ran on."""
    try:
        _bundle(item)
    finally:  # the fixtures end (stacks stop) whatever happened to the bundle
        yield


def _bundle(item: pytest.Item) -> None:
    folder, root = scenario_folder(item.nodeid), _report_root()
    if folder is None or root is None or _STARTED not in item.stash:
        return
    stacks = _stacks_used(item)
    write_log_slice([s.logs_dir for s in stacks], item.stash[_LOG_SIZES], folder / "service.log", root)
    runbook_test = any(m.name in RUNBOOK_SECTIONS for m in item.iter_markers())
    if stacks and runbook_test and item.stash.get(_FAILED, False):
        from harness.toolkit.postmortem import take_postmortem

        take_postmortem(stacks[-1], item.stash[_STARTED], folder / "postmortem")


def _stacks_used(item: pytest.Item) -> list[LocalStack]:
    """The stacks the test ran on: the shared one first when it asked for it, then those it started;
    the last is the one its scenario most likely judged."""
    noted: list[LocalStack] = [*item.stash.get(_TEST_STACKS, [])]
    shared = item.config.stash.get(_SESSION_STACK, None)
    if shared is not None and shared not in noted and "stack" in getattr(item, "fixturenames", ()):
        noted.insert(0, shared)
    return noted


def _uses(node: pytest.Item, stack: LocalStack) -> LocalStack:
    """Note that the test uses `stack` (for its log slice and post-mortem)."""
    used = node.stash.setdefault(_TEST_STACKS, [])
    if stack not in used:
        used.append(stack)
    return stack


def _shared_stack(request: pytest.FixtureRequest) -> LocalStack:
    """The shared stack, noted as used by the requesting test."""
    shared: LocalStack = request.getfixturevalue("stack")
    return _uses(request.node, shared)


def _stack_options(config: pytest.Config) -> dict[str, str]:
    """The options that chose the implementation and its infrastructure, as `stack_config` resolves them."""
    from harness.reproduction import STACK_OPTIONS

    options = {option: config.getoption(option) or os.environ.get(var, "")
               for option, var in (*OPTION_ENV, ("target", "HARNESS_TARGET")) if option in STACK_OPTIONS}
    return options  # unset ones are left out of the file: no target is the reference


@pytest.fixture
def reproduction(request: pytest.FixtureRequest) -> ScenarioChoices:
    """What the test chose at random (a seed, a shrunk schedule): `reproduction.record(seed=...)` keeps it
    in its reproduction.json; under `harness replay`, `reproduction.replayed` holds the replayed run's."""
    from harness.reproduction import FILE, ScenarioChoices, recorded_for

    folder = scenario_folder(request.node.nodeid)
    return ScenarioChoices(folder / FILE if folder else None, recorded_for(request.node.nodeid))


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Tools and capabilities before any fixture: a missing tool skips the test (or, strict, errors it),
    a capability the target lacks makes it not applicable, before a stack starts."""
    tools = [m.args[0] if m.args else "" for m in item.iter_markers("tool")]
    for name in dict.fromkeys(tools + (["nginx"] if item.get_closest_marker("nginx") else [])):
        require_tool(name, strict=strict_tools(item.config))
    needed = [cap for marker in item.iter_markers("needs") for cap in marker.args]
    if needed:
        require_capabilities(target_profile(item.config), needed)


def require_capabilities(profile: TargetProfile, needed: list[str]) -> None:
    """Return when the target has them all; else skip as not applicable, naming what it lacks."""
    from harness.report.junit_results import NOT_APPLICABLE
    from harness.target import CAPABILITIES

    unknown = sorted(set(needed) - set(CAPABILITIES))
    if unknown:
        pytest.fail(f"unknown capability {unknown[0]!r} in a needs marker; known: {', '.join(CAPABILITIES)}",
                    pytrace=False)
    lacking = profile.lacks(*dict.fromkeys(needed))
    if lacking:
        pytest.skip(f"{NOT_APPLICABLE} target {profile.name} lacks " + "; ".join(
            f"{cap} ({CAPABILITIES[cap]})" for cap in lacking))


@pytest.fixture(scope="session")
def stack_config(pytestconfig: pytest.Config) -> StackConfig:
    from harness.stack import Intervals, StackConfig

    opt = pytestconfig.getoption
    env = dict(os.environ)
    for option, var in OPTION_ENV:
        if opt(option):
            env[var] = opt(option)
    env.pop("HARNESS_TARGET", None)  # resolved once, by target_profile, for the stack and the needs markers alike
    return StackConfig.from_env(env, intervals=Intervals.fast(), profile=target_profile(pytestconfig))


@pytest.fixture(scope="session")
def service_intervals(stack_config: StackConfig) -> Intervals:
    from harness.stack import Intervals

    return stack_config.service.intervals if stack_config.service else Intervals.fast()


def _announce_component(name: str, seconds: float) -> None:
    emit_progress({"event": "component", "name": name, "seconds": round(seconds, 2)})


def _start(config: StackConfig, tmp_path_factory: pytest.TempPathFactory, name: str,
           announce: bool = False) -> LocalStack:
    """`name`: the stack's logs folder under the report's `logs/` (under `harness run`), else a pytest
    tmp dir of that name (pytest keeps the last runs': logs survive for the post-mortem). `announce`: its
    components' start times as progress events (the session stack's)."""
    import dataclasses

    from harness.stack import LocalStack

    if config.logs_dir is None:
        root = _report_root()
        logs_dir = root / "logs" / name if root else tmp_path_factory.mktemp(name.replace("/", "-"))
        config = dataclasses.replace(config, logs_dir=logs_dir)
    stack = LocalStack(config, on_started=_announce_component if announce else None)
    t0 = time.monotonic()
    try:
        stack.start()
    except HarnessError as exc:
        pytest.fail(f"{STACK_NOT_STARTED} {name}: {exc}", pytrace=False)
    if announce:
        emit_progress({"event": "stack", "seconds": round(time.monotonic() - t0, 2)})
    return stack


@pytest.fixture(scope="session")
def stack(stack_config: StackConfig, tmp_path_factory: pytest.TempPathFactory,
          pytestconfig: pytest.Config) -> Iterator[LocalStack]:
    """The shared stack; one per session. Yields a `LocalStack` (see `.info` for endpoints)."""
    from harness.report.run_context import stack_settings
    from harness.stack import install_signal_handlers

    install_signal_handlers()  # SIGTERM to pytest tears the stack down like Ctrl-C does
    started = _start(stack_config, tmp_path_factory, "stack", announce=True)
    pytestconfig.stash[_SESSION_STACK] = started
    _note_configuration(stack=stack_settings(stack_config))
    try:
        yield started
    finally:
        started.stop()


@pytest.fixture(scope="session")
def stack_info(stack: LocalStack) -> StackInfo:
    return stack.info


@pytest.fixture(scope="session")
def toxiproxy(stack: LocalStack) -> ToxiproxyApi:
    assert stack.api is not None
    return stack.api


@pytest.fixture
def clean_db(stack: LocalStack) -> str:
    """Empty the service's tables before the test (TRUNCATE, well under a second); the direct DSN."""
    from harness.stack.db_reset import truncate_service_tables

    truncate_service_tables(stack.info.dsn)
    return stack.info.dsn


@pytest.fixture
def stack_factory(stack_config: StackConfig, tmp_path_factory: pytest.TempPathFactory,
                  request: pytest.FixtureRequest) -> Iterator[Callable[..., LocalStack]]:
    """`stack_factory(**overrides) -> LocalStack`: a separate, started stack; stopped after the test.

    Overrides are StackConfig / ServiceConfig / Intervals fields by name, e.g.
    `stack_factory(nginx="buffered", api_replicas=2, heartbeat_ms=500)`.
    """
    started: list[LocalStack] = []

    def factory(**overrides: object) -> LocalStack:
        # Its own proxy names, in case the toxiproxy server is shared (TOXIPROXY_URL).
        prefix = f"f{len(started)}_" if stack_config.toxiproxy_url else ""
        config = stack_config.with_overrides(**{"proxy_prefix": prefix, "logs_dir": None, **overrides})
        from harness.reproduction import scenario_slug

        new = _start(config, tmp_path_factory, f"factory/{scenario_slug(request.node.nodeid)}-{len(started)}")
        started.append(new)
        return _uses(request.node, new)

    try:
        yield factory
    finally:
        for one in reversed(started):
            one.stop()


@pytest.fixture(autouse=True)
def _harness_markers(request: pytest.FixtureRequest) -> None:
    """`stack`-marked tests get the shared stack, healed and with clean proxies."""
    if request.node.get_closest_marker("stack"):
        _shared_stack(request).heal()


@pytest.fixture
def scenario(request: pytest.FixtureRequest, tmp_path: Path,
             record_property: Callable[[str, object], None]) -> Iterator[Scenario]:
    """A `Scenario` (harness.toolkit): the test's history and judgement, bound to the shared stack
    (started only when first used; `scenario.on(stack)` binds another). Its files land in the run's
    report folder under `harness run`, else in the test's tmp_path; the history is saved even when the
    test fails."""
    from harness.nemesis.stand_in import stand_ins
    from harness.toolkit import Scenario

    folder = scenario_folder(request.node.nodeid) or tmp_path
    folder.mkdir(parents=True, exist_ok=True)
    record = Scenario(folder, stack_source=lambda: _shared_stack(request))
    record_property("checks_file", str(record.checks_file))
    try:
        yield record
    finally:
        record.save_history()
        replaced = stand_ins(record.history)
        if replaced:  # the report says which faults were the nearest real ones, not those asked for
            record_property(STAND_IN, replaced)


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """`@pytest.mark.anyio` tests run on asyncio (the service's and the consumers' loop)."""
    return "asyncio"
