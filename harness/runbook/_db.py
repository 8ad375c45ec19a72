"""One read-mostly connection to the service's database, with psycopg's errors mapped to ours."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.rows import dict_row

from harness.errors import DatabaseUnreachable

__all__ = ["connect", "fetch_all", "fetch_one", "redact"]


def redact(dsn: str) -> str:
    """The DSN without its password, for messages."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable dsn>"
    info.pop("password", None)
    return psycopg.conninfo.make_conninfo("", **info)


@contextmanager
def connect(dsn: str, *, autocommit: bool = True, connect_timeout: int = 5) -> Iterator[psycopg.Connection[Any]]:
    """A connection that raises `DatabaseUnreachable` (one line, no password) when it cannot open."""
    try:
        conn = psycopg.connect(dsn, autocommit=autocommit, connect_timeout=connect_timeout, row_factory=dict_row)
    except (psycopg.Error, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise DatabaseUnreachable(f"cannot connect to {redact(dsn)}: {first}") from exc
    try:
        yield conn
    finally:
        conn.close()


def fetch_all(conn: psycopg.Connection[Any], sql: str, params: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    try:
        return list(conn.execute(sql, params).fetchall())
    except psycopg.errors.UndefinedTable as exc:
        raise DatabaseUnreachable(f"the database lacks the runbook's tables ({exc.diag.message_primary});"
                                  " is this the service's database (run `python -m reference_impl migrate`)?") from exc


def fetch_one(conn: psycopg.Connection[Any], sql: str, params: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    rows = fetch_all(conn, sql, params)
    return rows[0] if rows else None
