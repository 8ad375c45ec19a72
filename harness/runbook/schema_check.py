"""The runbook's "Schema Health Checks": the required indexes and keys, with the right uniqueness,
and the columns its SQL names, reachable unquoted (as the runbook writes them).

Tables resolve through the connection's search_path, as the runbook's SQL would.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from harness.runbook._db import connect, fetch_all

__all__ = ["REQUIRED_COLUMNS", "REQUIRED_INDEXES", "Requirement", "SchemaReport", "evaluate", "schema_check"]

RUNBOOK_INDEXES_SQL = """SELECT indexname, indexdef
FROM pg_indexes
WHERE tablename IN ('runs', 'run_events', 'run_outbox')"""

# Every index of the three tables (as resolved by search_path) with its columns, uniqueness, primary key.
INDEXES_SQL = """SELECT t.relname AS table, i.relname AS index, x.indisunique AS unique, x.indisprimary AS primary,
       array(SELECT a.attname FROM unnest(x.indkey) WITH ORDINALITY k(attnum, n)
             JOIN pg_attribute a ON a.attrelid = t.oid AND a.attnum = k.attnum ORDER BY k.n)::text[] AS columns
FROM pg_index x JOIN pg_class t ON t.oid = x.indrelid JOIN pg_class i ON i.oid = x.indexrelid
WHERE t.oid IN (SELECT to_regclass(n)::oid FROM unnest(%(tables)s::text[]) n WHERE to_regclass(n) IS NOT NULL)"""

COLUMNS_SQL = """SELECT c.relname AS table, a.attname AS column
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
WHERE c.oid IN (SELECT to_regclass(n)::oid FROM unnest(%(tables)s::text[]) n WHERE to_regclass(n) IS NOT NULL)
  AND a.attnum > 0 AND NOT a.attisdropped"""

TABLES = ("runs", "run_events", "run_outbox")
# (table, columns, kind): kind "unique", "index" (leading columns, any kind) or "primary".
REQUIRED_INDEXES = (("run_events", ("runid", "seq"), "unique"),
                    ("run_events", ("runid", "publishedat"), "index"),
                    ("run_outbox", ("runid",), "primary"))
REQUIRED_COLUMNS = {"runs": ("id", "state", "startedat", "finishedat", "lastseq"),
                    "run_events": ("runid", "seq", "type", "ts", "publishedat"),
                    "run_outbox": ("runid", "nextseq", "updatedat")}
_LABEL = {"unique": "UNIQUE", "index": "index (for backfill queries)", "primary": "PRIMARY KEY"}


@dataclass
class Requirement:
    what: str
    ok: bool
    found: str = ""
    problem: str = ""


@dataclass
class SchemaReport:
    requirements: list[Requirement] = field(default_factory=list)
    indexes: list[dict[str, Any]] = field(default_factory=list)  # the runbook's own query's rows

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.requirements)

    @property
    def missing(self) -> list[str]:
        return [r.what for r in self.requirements if not r.ok]

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok, "missing": self.missing}


def evaluate(indexes: list[dict[str, Any]], columns: dict[str, set[str]]) -> list[Requirement]:
    """Pure: the requirements against catalog rows (`table, index, unique, primary, columns`)."""
    out = [_table_req(t, columns) for t in TABLES]
    out += [_column_req(t, c, columns) for t, cols in REQUIRED_COLUMNS.items() if t in columns for c in cols]
    out += [_index_req(t, cols, kind, indexes) for t, cols, kind in REQUIRED_INDEXES]
    return out


def _table_req(table: str, columns: dict[str, set[str]]) -> Requirement:
    ok = table in columns
    return Requirement(f"table {table}", ok, problem="" if ok else f"no table {table} on the search_path")


def _column_req(table: str, column: str, columns: dict[str, set[str]]) -> Requirement:
    have = columns[table]
    if column in have:
        return Requirement(f"column {table}.{column}", True, column)
    quoted = [c for c in have if c.lower() == column]
    hint = (f'only the quoted "{quoted[0]}" exists: unquoted SQL such as the runbook\'s folds to {column} and fails'
            if quoted else "missing")
    return Requirement(f"column {table}.{column}", False, problem=hint)


def _index_req(table: str, cols: tuple[str, ...], kind: str, indexes: list[dict[str, Any]]) -> Requirement:
    what = f"{table}({', '.join(cols)}) {_LABEL[kind]}"
    mine = [i for i in indexes if i["table"] == table]
    for idx in mine:
        have = tuple(c.lower() for c in idx["columns"])
        if kind == "index" and have[:len(cols)] == cols or kind != "index" and have == cols:
            if kind == "unique" and not idx["unique"]:
                continue
            if kind == "primary" and not idx["primary"]:
                continue
            return Requirement(what, True, found=idx["index"])
    near = [f"{i['index']}({', '.join(i['columns'])}){' UNIQUE' if i['unique'] else ''}" for i in mine]
    return Requirement(what, False, problem=f"missing; {table} has {', '.join(near) or 'no index'}")


def schema_check(dsn: str, search_path: str | None = None) -> SchemaReport:
    with connect(dsn) as conn:
        if search_path:
            conn.execute("SELECT set_config('search_path', %s, false)", (search_path,))
        runbook_rows = fetch_all(conn, RUNBOOK_INDEXES_SQL)
        indexes = fetch_all(conn, INDEXES_SQL, {"tables": list(TABLES)})
        columns: dict[str, set[str]] = {}
        for row in fetch_all(conn, COLUMNS_SQL, {"tables": list(TABLES)}):
            columns.setdefault(row["table"], set()).add(row["column"])
    return SchemaReport(evaluate(indexes, columns), runbook_rows)
