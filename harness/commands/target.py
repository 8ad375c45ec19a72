"""`harness init-profile` and `harness check-profile`: describe a team's own implementation, then probe it."""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Annotated

import typer

from harness.commands.options import JsonOpt, StackDsnOpt
from harness.commands.output import stdout
from harness.commands.runbook_common import emit_json
from harness.errors import ConfigError
from harness.stack import StackConfig
from harness.target import default_profile_path, load_profile

TEMPLATE = '''# A target profile for the harness (docs/TARGETS.md has every field). Fill in your service's commands;
# placeholders in {braces} are filled by the harness. Then: harness check-profile THIS_FILE

[target]
name = "my-service"
stream_path = "/api/agents/runs/{run_id}/stream"
endpoints = ["create_run", "get_run", "cancel", "append"]
# What your service offers; scenarios needing anything else are reported not applicable.
# One process doing every role? Give it role = "all" instead of the api and the workers, and drop
# "separate_roles" (docs/TARGETS.md, "One process for every role").
capabilities = ["last_event_id", "cancel", "append_endpoint", "queue_worker", "separate_roles"]

[[process]]
role = "migrate"                      # run once, must exit 0; leave it out if the service migrates itself
command = ["node", "dist/main.js", "migrate"]
env = { DATABASE_URL = "{dsn}" }

[[process]]
role = "api"                          # must listen on {port}; answers 200 on `health` when ready
command = ["node", "dist/main.js", "api"]  # or your container image: image = "team/svc:1.4" with args = ["api"]
health = "/healthz"
env = { DATABASE_URL = "{dsn}", PORT = "{port}", HEARTBEAT_MS = "{heartbeat_ms}" }

[[process]]
role = "outbox-worker"
command = ["node", "dist/main.js", "outbox-worker"]
health = ""                           # no port: ready once it has stayed up (target.ready_after_s)
env = { DATABASE_URL = "{dsn}", OUTBOX_POLL_MS = "{poll_ms}" }

[[process]]
role = "queue-worker"
command = ["node", "dist/main.js", "queue-worker"]
health = ""
env = { DATABASE_URL = "{dsn}" }

[logs]
format = "json"                       # json | logfmt
[logs.names]                          # the runbook's name = yours, where they differ
# msg = "message"
# runId = "run_id"
# "metric.events_published" = "outbox.published"
'''


def register(app: typer.Typer) -> None:
    app.command("init-profile")(init_profile)
    app.command("check-profile")(check_profile)


def init_profile(
    out: Annotated[Path, typer.Argument(help="Where to write the profile.")] = Path("target.toml"),
    from_reference: Annotated[bool, typer.Option("--from-reference",
                                                 help="Start from the reference service's own profile.")] = False,
    force: Annotated[bool, typer.Option(help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented target profile to start from (docs/TARGETS.md)."""
    if out.exists() and not force:
        raise ConfigError(f"{out} exists; pass --force to overwrite it")
    out.write_text(default_profile_path().read_text() if from_reference else TEMPLATE)
    load_profile(out)  # what we write must be a valid profile
    stdout.print(f"wrote {out}; fill in your commands, then: harness check-profile {out}")


def check_profile(
    profile: Annotated[Path, typer.Argument(help="The target profile to check.", exists=True, dir_okay=False)],
    dsn: StackDsnOpt = None,
    json_: JsonOpt = False,
) -> None:
    """Start the target and probe it before any fault: processes, schema, SSE framing, heartbeat, logs.
    One line per probe; exit 0 when all hold, 1 with a problem."""
    from harness.target.check import check_profile as probe

    target = load_profile(profile)
    findings = probe(target, StackConfig.from_env(env={}).with_overrides(postgres_dsn=dsn))
    if json_:
        emit_json({"ok": all(f.ok for f in findings), "findings": [dataclasses.asdict(f) for f in findings]})
    else:
        for finding in findings:
            stdout.print(finding.line(), style="green" if finding.ok else "red", markup=False, highlight=False)
    raise typer.Exit(0 if all(f.ok for f in findings) else 1)
