"""Target profiles: parsing and validation (a bad field is one error naming the field and the file), and
scenarios a target lacks a capability for reported as not applicable."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.pytest_plugin import require_capabilities
from harness.target import CAPABILITIES, load_profile, reference_profile
from harness.target.profile import parse_profile

MINIMAL: dict[str, Any] = {"target": {"name": "t"},
                           "process": [{"role": "api", "command": ["srv"], "env": {"PORT": "{port}"}}]}


def _with(**changes: Any) -> dict[str, Any]:
    """MINIMAL with `section__field=value` changes (`process__...`: the first process)."""
    sections: dict[str, dict[str, Any]] = {"target": dict(MINIMAL["target"])}
    process: dict[str, Any] = dict(MINIMAL["process"][0])
    for key, value in changes.items():
        section, _, field = key.partition("__")
        (process if section == "process" else sections.setdefault(section, {}))[field] = value
    return {**sections, "process": [process]}


def test_the_reference_profile_describes_the_reference_service() -> None:
    profile = reference_profile()
    assert profile.name == "reference" and set(profile.capabilities) == set(CAPABILITIES)
    assert [p.role for p in profile.processes] == ["migrate", "api", "outbox-worker", "queue-worker"]
    assert all(p.health == "/healthz" for p in profile.processes if p.role != "migrate")


@pytest.mark.parametrize(("changes", "message"), [
    ({"target__colour": "red"}, "unknown field 'target.colour'"),
    ({"target__capabilities": ["failpoints", "telepathy"]}, "target.capabilities: 'telepathy' is not one of"),
    ({"target__stream_path": "/stream"}, "target.stream_path must contain {run_id}"),
    ({"process__role": "janitor"}, "process[0].role: 'janitor' is not a role"),
    ({"process__command": "srv --port 1"}, "process[0].command: an argv list"),
    ({"process__env": {"PORT": "{prot}"}}, "process[0]: unknown placeholder {prot}"),
    ({"process__env": {}}, "the api must listen on \"{port}\""),
    ({"process__health": "healthz"}, "process[0].health: a path"),
    ({"logs__format": "xml"}, "logs.format: 'xml'"),
    ({"logs__names": {"runID": "run"}}, "logs.names: 'runID' is not a runbook name"),
])
def test_a_bad_field_is_one_error_naming_it(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_profile(_with(**changes), Path("team.toml"))
    assert str(caught.value).startswith("team.toml: ") and message in str(caught.value)


def test_bad_toml_and_a_missing_file_are_one_error(tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text("[target\nname = 1")
    with pytest.raises(ConfigError, match="bad.toml: not valid TOML"):
        load_profile(tmp_path / "bad.toml")
    with pytest.raises(ConfigError, match="cannot read the target profile"):
        load_profile(tmp_path / "missing.toml")


def test_a_capability_the_target_lacks_makes_a_scenario_not_applicable() -> None:
    profile = parse_profile(_with(target__capabilities=["last_event_id"]))
    require_capabilities(profile, ["last_event_id"])  # present: nothing happens
    with pytest.raises(pytest.skip.Exception, match=r"^not applicable: target t lacks failpoints \(faults placed"):
        require_capabilities(profile, ["last_event_id", "failpoints"])
    with pytest.raises(pytest.fail.Exception, match="unknown capability 'telepathy'"):
        require_capabilities(profile, ["telepathy"])
