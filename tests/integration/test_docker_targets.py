"""A target's `image` processes as containers (harness/stack/service.py): the Node.js implementation run
from its image node-impl:latest (tests/targets/node_impl/profile-image.toml) passes scenarios that pause,
kill and restart its worker containers while clients stream, and that read a worker's log while it runs;
no container is left after the run; and a defect switched on in a container's environment is caught by
the scenario meant for it; a missing image is one line. Selected only when asked: `-m docker`."""
from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ToolMissingError
from harness.stack import ServiceConfig
from harness.stack.paths import repo_root
from harness.stack.service import Service
from harness.target.profile import parse_profile

from docker_helpers import harness_containers, no_container_before, run_pytest  # noqa: F401 (autouse)

pytestmark = [pytest.mark.docker, pytest.mark.tool("docker")]

IMAGE_PROFILE = repo_root() / "tests" / "targets" / "node_impl" / "profile-image.toml"
SCENARIOS = (
    # docker pause of the outbox worker under live streams
    "scenarios/test_run_stuck.py::test_held_outbox_delivers_nothing_new_then_catches_up_exactly_once",
    # the outbox.gap alert, read from the worker container's log while it runs
    "scenarios/test_run_stuck.py::test_a_seq_gap_stops_the_outbox_at_the_gap_and_alerts",
    # docker kill of the queue worker mid-job, then docker start of the same container
    "scenarios/test_recovery.py::test_a_killed_queue_worker_s_job_is_resumed_without_repeating_steps",
    # a paused outbox worker restarted the runbook's way: docker stop, docker start
    "scenarios/test_recovery.py::test_restarting_a_stuck_outbox_worker_clears_its_backlog[asyncio-sigstop]",
)
DEFECT = ("200_after_terminal", "scenarios/test_conformance.py::test_a_cursor_at_or_past_the_terminal_event_gets_204")


def test_the_node_image_passes_scenarios_that_kill_and_pause_its_containers(tmp_path: Path) -> None:
    code, cases, output = run_pytest(["--infra", "docker", "--target", str(IMAGE_PROFILE), *SCENARIOS], tmp_path)
    verdicts = {name: case.verdict for name, case in cases.items()}
    assert code == 0 and len(verdicts) == len(SCENARIOS) and set(verdicts.values()) == {"pass"}, (verdicts, output)
    assert harness_containers() == []


def test_a_defect_in_a_containers_environment_is_caught(tmp_path: Path) -> None:
    defect, scenario = DEFECT
    profile = tmp_path / "defect.toml"  # the image profile, with the defect in the api container's environment
    profile.write_text(f'extends = "{IMAGE_PROFILE}"\n[[process]]\nrole = "api"\n'
                       f'env = {{ NODE_IMPL_DEFECT = "{defect}" }}\n')
    code, cases, output = run_pytest(["--infra", "docker", "--target", str(profile), scenario], tmp_path)
    [case] = cases.values()
    assert code == 1 and case.verdict == "fail" and "(204, 204)" in case.message, (case, output)
    assert harness_containers() == []


def test_a_missing_image_of_the_target_is_one_line(tmp_path: Path) -> None:
    profile = parse_profile({"target": {"name": "team"}, "process": [
        {"role": "api", "image": "harness-test-absent:0", "env": {"PORT": "{port}"}}]})
    service = Service(ServiceConfig(profile=profile), {"api": "postgresql://unused"}, tmp_path, admin_token="t")
    with pytest.raises(ToolMissingError) as caught:
        service.start()
    assert str(caught.value) == ("the target 'team': the Docker image(s) harness-test-absent:0 are missing: build or"
                                 " pull them first (`docker build -t NAME DIR`, `docker pull NAME`)")
