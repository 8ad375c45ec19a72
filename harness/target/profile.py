"""A target profile: how to run and read an implementation of the layer the harness has never seen.

A TOML file (docs/TARGETS.md, field by field) says which processes to start for which role, with what
command (or container image and its arguments) and environment (placeholders the harness fills: `{port}`, `{dsn}`, `{heartbeat_ms}`, ...),
how each answers when ready, which of the contract's endpoints and capabilities it has, and how its
log lines map onto the runbook's names. A profile may `extends` another and change only what differs. `profiles/reference.toml` describes the reference service and is
one file like any other. A bad field is one `ConfigError` naming the field and the file.
"""

from __future__ import annotations

import functools
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from harness.errors import ConfigError

__all__ = ["CAPABILITIES", "ENDPOINTS", "HOST_ONLY_PLACEHOLDERS", "LOG_NAMES", "PLACEHOLDERS", "ROLES",
           "SERVED_ROLES", "LogSpec", "ProcessEntry",
           "TargetProfile", "default_profile_path", "fill", "load_profile", "parse_profile", "reference_profile"]

ROLES = ("migrate", "api", "outbox-worker", "queue-worker", "all")
# The roles a process of role `all` does in one process, over one database link (`pg`).
SERVED_ROLES = ("api", "outbox-worker", "queue-worker")
ENDPOINTS = ("create_run", "get_run", "cancel", "append")
# The fixed vocabulary a scenario's `needs(...)` marker draws on: what a target may lack.
CAPABILITIES: dict[str, str] = {
    "failpoints": "faults placed inside the service (`/admin/failpoints`): crash between publish and mark, ...",
    "admin_endpoint": "a loopback admin endpoint per process (with `failpoints`: where they are armed)",
    "last_event_id": "the stream resumes from a `Last-Event-ID` header",
    "cancel": "`POST /api/agents/runs/{id}/cancel`",
    "append_endpoint": "`POST /api/agents/runs/{id}/events`: clients append events themselves",
    "queue_worker": "a queue worker that runs a run's script (`run_jobs`)",
    "separate_roles": "api, outbox worker and queue worker are separate processes, each with its own DB link",
    "metrics_endpoint": "`/metrics` with the `outbox_backlog_avg` gauge",
    "json_logs": "log lines the runbook's `grep | jq` pipelines read as written",
    "x_accel_buffering": "streams answer `X-Accel-Buffering: no`",
    "sse_retry": "the stream's `retry:` field is set from `{sse_retry_ms}`",
}
# What the harness fills in a command or an environment value.
PLACEHOLDERS = ("port", "dsn", "host", "name", "admin_token", "logs_dir", "failpoints", "python", "profile_dir",
                "heartbeat_ms", "heartbeat_s", "poll_ms", "outbox_poll_ms", "queue_poll_ms", "outbox_tx_timeout_ms",
                "job_lease_ms", "backlog_sample_ms", "sse_retry_ms")
# The runbook's names a `[logs.names]` table may map (message names and field names alike).
LOG_NAMES = ("msg", "timestamp", "level", "component", "service", "runId", "seq", "type", "lag_ms", "publishedAt",
             "expectedSeq", "metric.events_published", "metric.events_inserted", "outbox-publisher",
             "worker:job:start", "stream-run", "outbox.gap", "outbox.error")
# Paths and programs of the harness's machine: nothing a container can see.
HOST_ONLY_PLACEHOLDERS = ("python", "profile_dir", "logs_dir")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")


@dataclass(frozen=True)
class ProcessEntry:
    role: str
    command: tuple[str, ...]  # argv, placeholders unfilled; () for an image
    env: Mapping[str, str] = field(default_factory=dict)
    health: str | None = None  # a path answering 200 on {port} once ready; None: up for `ready_after_s`
    image: str | None = None  # a container image run instead of a command (harness/stack/containers.py)
    args: tuple[str, ...] = ()  # with `image`: the container's command, after the image's entrypoint

    @property
    def templates(self) -> tuple[str, ...]:
        """Every text the harness fills placeholders in: the command (or args) and the env values."""
        return (*self.command, *self.args, *self.env.values())

    @property
    def listens(self) -> bool:
        """Whether the process gets a port: it names `{port}` in its command, args or environment."""
        return any("{port}" in part for part in self.templates)


@dataclass(frozen=True)
class LogSpec:
    format: str = "json"  # json | logfmt
    names: Mapping[str, str] = field(default_factory=dict)  # the runbook's name -> the target's

    def to_runbook(self) -> dict[str, str]:
        """The target's name -> the runbook's: how a parsed line is renamed."""
        return {theirs: ours for ours, theirs in self.names.items() if theirs != ours}


@dataclass(frozen=True)
class TargetProfile:
    name: str
    processes: tuple[ProcessEntry, ...]
    stream_path: str = "/api/agents/runs/{run_id}/stream"
    endpoints: frozenset[str] = frozenset(ENDPOINTS)
    capabilities: frozenset[str] = frozenset()
    logs: LogSpec = field(default_factory=LogSpec)
    ready_after_s: float = 1.0  # a process without `health` is ready once it has run this long
    source: Path | None = None  # the file it was read from

    def entry(self, role: str) -> ProcessEntry | None:
        return next((p for p in self.processes if p.role == role), None)

    def lacks(self, *capabilities: str) -> list[str]:
        return [c for c in capabilities if c not in self.capabilities]

    @property
    def images(self) -> tuple[str, ...]:
        """The container images its processes run, each once."""
        return tuple(dict.fromkeys(p.image for p in self.processes if p.image))


def default_profile_path() -> Path:
    """`<repo>/profiles/reference.toml` (not through harness.stack: the stack imports this module)."""
    return Path(__file__).resolve().parents[2] / "profiles" / "reference.toml"


@functools.cache
def reference_profile() -> TargetProfile:
    """The reference service's profile, read once."""
    return load_profile(default_profile_path())


def load_profile(path: str | Path | None = None) -> TargetProfile:
    """The profile in `path` (None: the reference service's)."""
    file = Path(path) if path is not None else default_profile_path()
    return parse_profile(_read(file, ()), file)


def _read(file: Path, seen: tuple[Path, ...]) -> dict[str, Any]:
    """The file's TOML laid over the profile it `extends`, if it names one (relative to its folder)."""
    try:
        data = tomllib.loads(file.read_text())
    except OSError as exc:
        raise ConfigError(f"cannot read the target profile {file}: {exc.strerror or exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{file}: not valid TOML: {exc}") from exc
    base = data.pop("extends", None)
    if base is None:
        return data
    if not isinstance(base, str) or not base:
        raise ConfigError(f"{file}: extends: the path of another profile, e.g. \"profile.toml\", got {base!r}")
    base_file = (file.parent / base).resolve()
    if base_file in (*seen, file.resolve()):
        raise ConfigError(f"{file}: extends: {base} leads back to this file")
    return _extend(_read(base_file, (*seen, file.resolve())), data)


def _extend(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """`over` laid on `base`: a table merges key by key, any other value replaces; a `[[process]]` merges
    into the base's process of the same role (or is added), and a `command` or `image` given replaces the
    base's way of running it (`command`, `image` and `args`) whole."""
    merged = dict(base)
    for key, value in over.items():
        if key == "process" and isinstance(value, list) and isinstance(base.get(key), list):
            merged[key] = _extend_processes(base[key], value)
        elif isinstance(value, dict) and isinstance(base.get(key), dict):
            merged[key] = _extend(base[key], value)
        else:
            merged[key] = value
    return merged


def _extend_processes(base: list[Any], over: list[Any]) -> list[Any]:
    merged = list(base)
    for entry in over:
        same = [i for i, b in enumerate(merged) if isinstance(b, dict) and isinstance(entry, dict)
                and b.get("role") == entry.get("role")]
        if not same:
            merged.append(entry)
            continue
        kept = merged[same[0]]
        if "command" in entry or "image" in entry:
            kept = {k: v for k, v in kept.items() if k not in ("command", "image", "args")}
        merged[same[0]] = _extend(kept, entry)
    return merged


def parse_profile(data: Mapping[str, Any], source: Path | None = None) -> TargetProfile:
    where = str(source) if source else "the profile"
    _only(data, {"target", "process", "logs"}, "", where)
    target = _table(data, "target", where)
    _only(target, {"name", "stream_path", "endpoints", "capabilities", "ready_after_s"}, "target", where)
    raw_processes = data.get("process")
    if not isinstance(raw_processes, list) or not raw_processes:
        raise ConfigError(f"{where}: [[process]]: at least one process is needed (an `api`)")
    processes = tuple(_process(p, i, where) for i, p in enumerate(raw_processes))
    roles = [p.role for p in processes]
    twice = sorted({r for r in roles if roles.count(r) > 1})
    if twice:
        raise ConfigError(f"{where}: [[process]]: role {twice[0]!r} appears twice; how many run is the harness's"
                          " setting (`--api-replicas`, `--outbox-workers`, `--queue-workers`)")
    _check_roles(roles, where)
    stream_path = _str(target, "stream_path", "target", where, "/api/agents/runs/{run_id}/stream")
    if "{run_id}" not in stream_path:
        raise ConfigError(f"{where}: target.stream_path must contain {{run_id}}, got {stream_path!r}")
    capabilities = _words(target, "capabilities", "target", where, tuple(CAPABILITIES), default=())
    _check_separate_roles(roles, capabilities, where)
    return TargetProfile(
        name=_str(target, "name", "target", where),
        processes=processes,
        stream_path=stream_path,
        endpoints=_words(target, "endpoints", "target", where, ENDPOINTS, default=ENDPOINTS),
        capabilities=capabilities,
        logs=_logs(data.get("logs", {}), where),
        ready_after_s=_number(target, "ready_after_s", "target", where, 1.0),
        source=source,
    )


def _check_roles(roles: list[str], where: str) -> None:
    """An `api`, or one `all` process doing every role alone."""
    if "all" in roles:
        also = [r for r in roles if r in SERVED_ROLES]
        if also:
            raise ConfigError(f"{where}: [[process]]: role \"all\" does every role in one process; drop the"
                              f" {also[0]!r} process (only \"migrate\" may go with it)")
    elif "api" not in roles:
        raise ConfigError(f"{where}: [[process]]: no process has role = \"api\" (or \"all\")")


def _check_separate_roles(roles: list[str], capabilities: frozenset[str], where: str) -> None:
    """`separate_roles` states what the processes show, so it must agree with them: a claim the processes
    contradict, or separate processes without the claim, is an error (scenarios and link faults rely on it)."""
    separate = "all" not in roles and sum(r in SERVED_ROLES for r in roles) > 1
    if "separate_roles" in capabilities and not separate:
        why = "its one \"all\" process does every role" if "all" in roles else "it has one role process only"
        raise ConfigError(f"{where}: target.capabilities: \"separate_roles\" contradicts the processes: {why};"
                          " remove it")
    if separate and "separate_roles" not in capabilities:
        raise ConfigError(f"{where}: target.capabilities: the roles run as separate processes; add"
                          " \"separate_roles\" (or run them as one process with role = \"all\")")


def _process(raw: Any, index: int, where: str) -> ProcessEntry:
    key = f"process[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: {key}: must be a table")
    _only(raw, {"role", "command", "image", "args", "env", "health"}, key, where)
    role = _str(raw, "role", key, where)
    if role not in ROLES:
        raise ConfigError(f"{where}: {key}.role: {role!r} is not a role; roles: {', '.join(ROLES)}")
    command, image, args = _command_or_image(raw, key, where)
    env = raw.get("env", {})
    if not isinstance(env, dict) or not all(isinstance(v, (str, int)) for v in env.values()):
        raise ConfigError(f"{where}: {key}.env: a table of NAME = \"value\"")
    health = raw.get("health")
    if health is not None and not (isinstance(health, str) and (health == "" or health.startswith("/"))):
        raise ConfigError(f"{where}: {key}.health: a path such as \"/healthz\", or \"\" for none")
    if role == "migrate" and health:
        raise ConfigError(f"{where}: {key}.health: migrate runs once and exits; it has no health path")
    entry = ProcessEntry(role, command, {str(k): str(v) for k, v in env.items()}, health or None, image, args)
    if health is None and role != "migrate" and entry.listens:  # unset: the contract's /healthz on its port
        entry = replace(entry, health="/healthz")
    for text in entry.templates:
        for name in _PLACEHOLDER.findall(text):
            if name not in PLACEHOLDERS:
                raise ConfigError(f"{where}: {key}: unknown placeholder {{{name}}}; known: "
                                  + ", ".join(f"{{{p}}}" for p in PLACEHOLDERS))
            if image and name in HOST_ONLY_PLACEHOLDERS:
                raise ConfigError(f"{where}: {key}: {{{name}}} is a path on the harness's machine, which the"
                                  " container of an `image` cannot see; bake it into the image instead")
    if entry.health and not entry.listens:
        raise ConfigError(f"{where}: {key}.health: the process answers no port; give it \"{{port}}\" in its"
                          " command or env, or set health = \"\"")
    if role in ("api", "all") and not entry.listens:
        raise ConfigError(f"{where}: {key}: the {'api' if role == 'api' else 'all process'} must listen on"
                          " \"{port}\" (in its command or env): it serves the API")
    return entry


def _command_or_image(raw: Mapping[str, Any], key: str, where: str) -> tuple[tuple[str, ...], str | None,
                                                                            tuple[str, ...]]:
    """(command, image, args): a process runs exactly one of an argv or a container image."""
    if ("command" in raw) == ("image" in raw):
        raise ConfigError(f"{where}: {key}: give exactly one of `command` (an argv list) or `image` (a container"
                          " image, with its `args`)")
    if "command" in raw:
        if "args" in raw:
            raise ConfigError(f"{where}: {key}.args: only with `image`; a command's arguments go in `command`")
        return _argv(raw, "command", key, where, "[\"node\", \"main.js\"]", allow_empty=False), None, ()
    return (), _str(raw, "image", key, where), _argv(raw, "args", key, where, "[\"api\"]", allow_empty=True)


def _argv(raw: Mapping[str, Any], name: str, key: str, where: str, example: str, *, allow_empty: bool) -> tuple[str, ...]:
    value = raw.get(name, [])
    if not isinstance(value, list) or not (value or allow_empty) or not all(isinstance(a, str) and a for a in value):
        raise ConfigError(f"{where}: {key}.{name}: an argv list of non-empty strings, e.g. {example}")
    return tuple(value)


def _logs(raw: Any, where: str) -> LogSpec:
    if not isinstance(raw, dict):
        raise ConfigError(f"{where}: [logs] must be a table")
    _only(raw, {"format", "names"}, "logs", where)
    fmt = _str(raw, "format", "logs", where, "json")
    if fmt not in ("json", "logfmt"):
        raise ConfigError(f"{where}: logs.format: {fmt!r}; formats: json, logfmt")
    names = raw.get("names", {})
    if not isinstance(names, dict) or not all(isinstance(v, str) and v for v in names.values()):
        raise ConfigError(f"{where}: logs.names: a table of \"runbook name\" = \"the target's name\"")
    unknown = sorted(set(names) - set(LOG_NAMES))
    if unknown:
        raise ConfigError(f"{where}: logs.names: {unknown[0]!r} is not a runbook name; names: {', '.join(LOG_NAMES)}")
    return LogSpec(fmt, dict(names))


def _only(table: Mapping[str, Any], allowed: set[str], key: str, where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        name = f"{key}.{unknown[0]}" if key else unknown[0]
        raise ConfigError(f"{where}: unknown field {name!r}; fields{' of ' + key if key else ''}: "
                          + ", ".join(sorted(allowed)))


def _table(data: Mapping[str, Any], key: str, where: str) -> Mapping[str, Any]:
    value = data.get(key)
    if not isinstance(value, dict):
        raise ConfigError(f"{where}: [{key}] is missing or not a table")
    return value


def _str(table: Mapping[str, Any], key: str, section: str, where: str, default: str | None = None) -> str:
    value = table.get(key, default)
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {section}.{key}: a non-empty string is needed, got {value!r}")
    return value


def _number(table: Mapping[str, Any], key: str, section: str, where: str, default: float) -> float:
    value = table.get(key, default)
    if not isinstance(value, (int, float)) or isinstance(value, bool) or value < 0:
        raise ConfigError(f"{where}: {section}.{key}: a number of seconds, got {value!r}")
    return float(value)


def _words(table: Mapping[str, Any], key: str, section: str, where: str, vocabulary: tuple[str, ...],
           default: tuple[str, ...]) -> frozenset[str]:
    value = table.get(key, list(default))
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"{where}: {section}.{key}: a list of strings from: {', '.join(vocabulary)}")
    unknown = sorted(set(value) - set(vocabulary))
    if unknown:
        raise ConfigError(f"{where}: {section}.{key}: {unknown[0]!r} is not one of: {', '.join(vocabulary)}")
    return frozenset(value)


def fill(text: str, values: Mapping[str, str]) -> str:
    """`text` with each `{placeholder}` replaced by its value (validated names only reach here)."""
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), text)
