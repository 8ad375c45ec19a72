"""Target profiles: parsing and validation (a bad field is one error naming the field and the file), and
scenarios a target lacks a capability for reported as not applicable."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from harness.errors import ConfigError
from harness.pytest_plugin import require_capabilities
from harness.target import CAPABILITIES, load_profile, reference_profile
from harness.stack.service import carrier_name, links_of
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


IMAGE: dict[str, Any] = {"role": "api", "image": "team/api:1.4", "args": ["serve"], "env": {"PORT": "{port}"}}


@pytest.mark.parametrize(("changes", "message"), [
    ({"command": ["srv"]}, "process[0]: give exactly one of `command` (an argv list) or `image`"),
    ({"image": None}, "process[0]: give exactly one of `command` (an argv list) or `image`"),
    ({"image": ""}, "process[0].image: a non-empty string"),
    ({"args": "serve --fast"}, "process[0].args: an argv list"),
    ({"args": ["{python}", "x"]}, "process[0]: {python} is a path on the harness's machine"),
    ({"env": {"PORT": "{port}", "CONF": "{profile_dir}/conf"}}, "process[0]: {profile_dir} is a path"),
    ({"env": {"PORT": "{port}", "LOGS": "{logs_dir}"}}, "process[0]: {logs_dir} is a path"),
])
def test_a_bad_image_process_is_one_error_naming_it(changes: dict[str, Any], message: str) -> None:
    process = {k: v for k, v in {**IMAGE, **changes}.items() if v is not None}
    with pytest.raises(ConfigError) as caught:
        parse_profile({"target": {"name": "t"}, "process": [process]}, Path("team.toml"))
    assert str(caught.value).startswith("team.toml: ") and message in str(caught.value)


def test_args_belong_to_an_image() -> None:
    with pytest.raises(ConfigError, match=r"process\[0\].args: only with `image`"):
        parse_profile(_with(process__args=["x"]), Path("team.toml"))


def test_an_image_process_runs_its_image_with_its_args() -> None:
    [entry] = parse_profile({"target": {"name": "t"}, "process": [IMAGE]}).processes
    assert (entry.image, entry.args, entry.command, entry.health) == ("team/api:1.4", ("serve",), (), "/healthz")
    assert entry.listens


def test_a_profile_extends_another_and_changes_only_what_differs(tmp_path: Path) -> None:
    (tmp_path / "base.toml").write_text(
        '[target]\nname = "t"\ncapabilities = ["cancel"]\n'
        '[[process]]\nrole = "api"\ncommand = ["srv"]\nenv = { PORT = "{port}", A = "1" }\n'
        '[logs]\nformat = "logfmt"\n')
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "image.toml").write_text(
        'extends = "../base.toml"\n[target]\nready_after_s = 2\ncapabilities = ["cancel", "separate_roles"]\n'
        '[[process]]\nrole = "api"\nimage = "t:1"\nenv = { B = "2" }\n'
        '[[process]]\nrole = "outbox-worker"\nimage = "t:1"\nargs = ["outbox"]\n')
    profile = load_profile(tmp_path / "sub" / "image.toml")
    api, outbox = profile.processes
    assert (profile.name, profile.capabilities, profile.ready_after_s, profile.logs.format) == (
        "t", frozenset({"cancel", "separate_roles"}), 2.0, "logfmt")
    assert (api.command, api.image, dict(api.env)) == ((), "t:1", {"PORT": "{port}", "A": "1", "B": "2"})
    assert (outbox.image, outbox.args, profile.images) == ("t:1", ("outbox",), ("t:1",))
    assert profile.source == tmp_path / "sub" / "image.toml"


def test_a_bad_or_circular_extends_is_one_error(tmp_path: Path) -> None:
    (tmp_path / "a.toml").write_text('extends = "b.toml"\n')
    (tmp_path / "b.toml").write_text('extends = "a.toml"\n')
    with pytest.raises(ConfigError, match=r"b.toml: extends: a.toml leads back to this file"):
        load_profile(tmp_path / "a.toml")
    (tmp_path / "c.toml").write_text('extends = "missing.toml"\n')
    with pytest.raises(ConfigError, match=r"cannot read the target profile .*missing.toml"):
        load_profile(tmp_path / "c.toml")
    (tmp_path / "d.toml").write_text("extends = 3\n")
    with pytest.raises(ConfigError, match=r"d.toml: extends: the path of another profile"):
        load_profile(tmp_path / "d.toml")


def test_the_node_image_profile_is_the_node_profile_run_as_containers() -> None:
    folder = Path(__file__).resolve().parents[1] / "targets" / "node_impl"
    local, image = load_profile(folder / "profile.toml"), load_profile(folder / "profile-image.toml")
    assert image.images == ("node-impl:latest",) and all(p.args == (p.role,) for p in image.processes)
    assert [(p.role, p.env, p.health) for p in image.processes] == [(p.role, p.env, p.health) for p in local.processes]
    assert (image.name, image.capabilities, image.logs, image.endpoints) == (
        local.name, local.capabilities, local.logs, local.endpoints)


def _processes(*roles: str, capabilities: tuple[str, ...] = (), port: bool = True) -> dict[str, Any]:
    """A profile with one process per role, each listening on {port} (unless `port` is False)."""
    env = {"PORT": "{port}"} if port else {}
    return {"target": {"name": "t", "capabilities": list(capabilities)},
            "process": [{"role": role, "command": ["srv", role], **({} if role == "migrate" else {"env": env})}
                        for role in roles]}


@pytest.mark.parametrize(("data", "message"), [
    (_processes("all", "api"), "role \"all\" does every role in one process; drop the 'api' process"),
    (_processes("all", "queue-worker"), "drop the 'queue-worker' process"),
    (_processes("all", port=False), "process[0]: the all process must listen on \"{port}\""),
    (_processes("all", capabilities=("separate_roles",)), "\"separate_roles\" contradicts the processes: its one"),
    (_processes("api", capabilities=("separate_roles",)), "contradicts the processes: it has one role process only"),
    (_processes("api", "outbox-worker"), "the roles run as separate processes; add \"separate_roles\""),
    (_processes("migrate", "outbox-worker"), "no process has role = \"api\" (or \"all\")"),
])
def test_role_all_and_separate_roles_must_agree_with_the_processes(data: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_profile(data, Path("team.toml"))
    assert str(caught.value).startswith("team.toml: ") and message in str(caught.value), caught.value


def test_one_all_process_with_or_without_migrate_is_a_profile() -> None:
    for roles in (("all",), ("migrate", "all")):
        profile = parse_profile(_processes(*roles, capabilities=("cancel",)))
        entry = profile.entry("all")
        assert entry is not None and entry.health == "/healthz" and "separate_roles" not in profile.capabilities
    assert "separate_roles" in parse_profile(_processes("api", "queue-worker", capabilities=("separate_roles",))).capabilities


def test_a_roles_process_on_an_all_target_is_the_all_process_and_its_link_is_pg() -> None:
    one = parse_profile(_processes("all"))
    assert links_of(one) == {"all": "pg"}
    names = ("outbox-worker-0", "api-1", "queue-worker-*", "outbox-worker", "postgres", "all-0", "*")
    assert [carrier_name(one, n) for n in names] == ["all-0", "all-1", "all-*", "all", "postgres", "all-0", "*"]
    separate = reference_profile()
    assert links_of(separate) == {"api": "pg_api", "outbox-worker": "pg_outbox", "queue-worker": "pg_queue"}
    assert carrier_name(separate, "outbox-worker-0") == "outbox-worker-0"
    assert load_profile(Path(__file__).parents[1] / "targets" / "node_impl" / "profile-all.toml").entry("all")
