"""`runbook-check`: is every SQL block and log pipeline of a Markdown runbook valid against the live
schema and the real log lines?

SQL: each block's placeholders are filled, each statement is planned with ``EXPLAIN`` (an
``EXPLAIN ANALYZE`` is checked as a plain ``EXPLAIN``) inside a ``READ ONLY`` transaction that is
rolled back, so nothing is ever written. The database's error is the block's verdict.

Log pipelines (bash blocks starting with ``grep ... logs/*.log``): run for real with bash against the
log folder (``logs`` linked to it), only when every stage is a read-only text tool, and each
``jq`` field reference and ``cut -d' ' -fN`` is checked on the log lines the greps select. A pipeline
whose greps select no line yet (a stack that has served no traffic) is "unexercised", not broken:
nothing shows it fails, and nothing shows it works.
"""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from harness.errors import RunbookCheckError
from harness.runbook._db import connect
from harness.service_logs import LogLine, read_log_lines
from harness.runbook.markdown_sql import CodeBlock, code_blocks, fill_placeholders, split_statements

__all__ = ["BlockResult", "DEFAULT_VALUES", "check_pipeline_fields", "check_runbook", "pipeline_stages",
           "unmatched_grep"]

DEFAULT_VALUES = {"runId": "runbook-check-run", "nextSeq": "1", "lastSeq": "1", "seq": "1", "fromSeq": "0"}
SAFE_TOOLS = frozenset({"grep", "jq", "awk", "cut", "sort", "uniq", "wc", "tail", "head"})
_EXPLAINABLE = ("select", "insert", "update", "delete", "with", "values", "table")
_EXPLAIN_ANALYZE = re.compile(r"^\s*explain\s+(\(.*?\)\s*|analyze\s+|verbose\s+)*", re.I | re.S)
_JQ_FIELD = re.compile(r"(?<![\w\]\)])\.([A-Za-z_][A-Za-z0-9_]*)")


@dataclass
class BlockResult:
    kind: str  # "sql" | "pipeline" | "skipped"
    where: str
    text: str
    status: str  # "ok" | "error" | "unexercised" (no log line to try it on) | "skipped"
    message: str = ""
    details: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---- SQL -----------------------------------------------------------------------------------------

def _explain_form(statement: str) -> str | None:
    """The statement to plan: `EXPLAIN <stmt>`; None when it cannot be planned (SET, SHOW, ...)."""
    head = statement.split(None, 1)[0].lower()
    if head == "explain":
        inner = _EXPLAIN_ANALYZE.sub("", statement, count=1)
        return f"EXPLAIN {inner}"
    return f"EXPLAIN {statement}" if head in _EXPLAINABLE else None


def check_sql_block(conn: psycopg.Connection[Any], block: CodeBlock, values: dict[str, str]) -> BlockResult:
    text, missing = fill_placeholders(block.text, values)
    result = BlockResult("sql", block.where, block.text, "ok")
    if missing:
        result.status = "error"
        result.message = f"placeholder(s) {', '.join(f'<{m}>' for m in missing)} have no value: pass --set NAME=VALUE"
        return result
    for statement in split_statements(text):
        result.details.append(_check_statement(conn, statement, result))
    return result


def _check_statement(conn: psycopg.Connection[Any], statement: str, result: BlockResult) -> str:
    first = " ".join(statement.split())[:70]
    explain = _explain_form(statement)
    if explain is None:
        return f"skipped (not plannable): {first}"
    try:
        with conn.transaction():  # a savepoint inside the read-only transaction
            conn.execute(explain)
        return f"ok: {first}"
    except psycopg.Error as exc:
        diag = exc.diag
        message = (diag.message_primary or str(exc)).strip()
        if diag.message_hint:
            message += f" (HINT: {diag.message_hint})"
        result.status, result.message = "error", result.message or message
        return f"error: {first}: {message}"


def _check_all_sql(dsn: str, blocks: list[CodeBlock], values: dict[str, str], search_path: str | None) -> list[BlockResult]:
    with connect(dsn, autocommit=False) as conn:
        conn.execute("SET TRANSACTION READ ONLY")
        conn.execute("SET LOCAL statement_timeout = '5s'")
        if search_path:
            conn.execute("SELECT set_config('search_path', %s, true)", (search_path,))
        try:
            return [check_sql_block(conn, b, values) for b in blocks]
        finally:
            conn.rollback()  # nothing is ever committed


# ---- log pipelines -------------------------------------------------------------------------------

def logical_lines(script: str) -> list[str]:
    """Commands of a bash block: continuation lines joined, comments and blank lines dropped."""
    joined = re.sub(r"\\\n\s*", " ", script)
    return [ln.strip() for ln in joined.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def pipeline_stages(command: str) -> list[list[str]]:
    """`a | b | c` -> [[a...], [b...], [c...]] with shell quoting; a `|` inside quotes does not split."""
    lexer = shlex.shlex(command, posix=True, punctuation_chars="|")
    lexer.whitespace_split = True
    stages: list[list[str]] = [[]]
    for token in lexer:
        if token == "|":
            stages.append([])
        else:
            stages[-1].append(token)
    return [s for s in stages if s]


def is_log_pipeline(stages: list[list[str]]) -> bool:
    return bool(stages) and stages[0][0] == "grep" and any(a.startswith("logs/") for a in stages[0])


def unmatched_grep(stages: list[list[str]], lines: list[LogLine]) -> str | None:
    """The first grep pattern of the pipeline that selects no log line; None when each selects some (pure)."""
    selected = lines
    for tool, *args in stages:
        if tool == "grep":
            pattern = next((a for a in args if not a.startswith("-") and not a.startswith("logs/")), "")
            selected = [ln for ln in selected if pattern in ln.raw]
            if not selected:
                return pattern
    return None


def check_pipeline_fields(stages: list[list[str]], lines: list[LogLine]) -> list[str]:
    """Problems of the pipeline's field references on the lines its greps select (pure); the greps are
    expected to select some (`unmatched_grep`)."""
    selected, problems = lines, []
    for stage in stages:
        tool, args = stage[0], stage[1:]
        if tool == "grep":
            pattern = next((a for a in args if not a.startswith("-") and not a.startswith("logs/")), "")
            selected = [ln for ln in selected if pattern in ln.raw]
        elif tool == "jq":
            expr = next((a for a in args if not a.startswith("-")), "")
            for name in dict.fromkeys(_JQ_FIELD.findall(expr)):
                lacking = sum(1 for ln in selected if name not in ln.obj)
                if lacking:
                    problems.append(f"jq field .{name} is missing in {lacking} of {len(selected)} selected line(s)")
        elif tool == "cut":
            problems += _check_cut(args, selected)
    return problems


def _check_cut(args: list[str], selected: list[LogLine]) -> list[str]:
    joined = " ".join(args)
    match = re.search(r"-f\s*(\d+)", joined)
    if "-d" not in joined or not match or " " not in joined.replace("-f", ""):
        return []
    index = int(match.group(1)) - 1
    wrong = [ln for ln in selected if ln.run_id and ln.run_id not in _field(ln.raw, index)]
    if wrong:
        return [f"cut -d' ' -f{index + 1} does not yield the runId in {len(wrong)} of {len(selected)} line(s),"
                f" e.g. {_field(wrong[0].raw, index)!r}"]
    return []


def _field(raw: str, index: int) -> str:
    parts = raw.split(" ")
    return parts[index] if index < len(parts) else ""


def run_pipeline(command: str, logs_dir: Path, timeout: float = 10.0) -> tuple[int, str, str]:
    """Run the pipeline with bash in a scratch folder whose `logs` links to the log folder."""
    with tempfile.TemporaryDirectory(prefix="runbook-check-") as scratch:
        os.symlink(logs_dir.resolve(), Path(scratch) / "logs")
        try:
            proc = subprocess.run(["bash", "-o", "pipefail", "-c", command], cwd=scratch, capture_output=True,
                                  text=True, timeout=timeout, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            return 124, "", f"timed out after {timeout}s"
    return proc.returncode, proc.stdout, proc.stderr


def check_bash_block(block: CodeBlock, lines: list[LogLine] | None, logs_dir: Path | None,
                     values: dict[str, str]) -> list[BlockResult]:
    out = []
    for command in logical_lines(fill_placeholders(block.text, values, sql=False)[0]):
        try:
            stages = pipeline_stages(command)
        except ValueError as exc:
            out.append(BlockResult("skipped", block.where, command, "skipped", f"cannot parse: {exc}"))
            continue
        if not is_log_pipeline(stages):
            out.append(BlockResult("skipped", block.where, command, "skipped", "not a log pipeline"))
        elif lines is None or logs_dir is None:
            out.append(BlockResult("pipeline", block.where, command, "skipped", "no log folder: pass --logs DIR"))
        else:
            out.append(_check_pipeline(command, stages, lines, logs_dir))
    return out


def _check_pipeline(command: str, stages: list[list[str]], lines: list[LogLine], logs_dir: Path) -> BlockResult:
    unmatched = unmatched_grep(stages, lines)
    if unmatched is not None:
        return BlockResult("pipeline", "", command, "unexercised",
                           f"no log line contains \"{unmatched}\" yet: drive a run first (--exercise)")
    result = BlockResult("pipeline", "", command, "ok")
    result.details = check_pipeline_fields(stages, lines)
    unsafe = sorted({s[0] for s in stages} - SAFE_TOOLS)
    if unsafe:
        result.details.append(f"not run: {', '.join(unsafe)} is not a read-only text tool")
    else:
        code, stdout, stderr = run_pipeline(command, logs_dir)
        err = stderr.strip().splitlines()[0] if stderr.strip() else ""
        out_lines = stdout.strip().splitlines()
        if code != 0 or err:
            result.details.insert(0, f"exit {code}: {err or 'no output (a grep matched no line)'}")
            if "parse error" in err and len(list(logs_dir.glob("*.log"))) > 1 and "-h" not in stages[0]:
                result.details.insert(1, "grep over several log files prefixes each line with its file name,"
                                         " which jq cannot parse: use `grep -h`")
        elif not out_lines:
            result.details.insert(0, "ran, but printed nothing")
        else:
            result.message = f"{len(out_lines)} line(s) of output, first: {out_lines[0][:80]}"
    if result.details:
        result.status, result.message = "error", result.details[0]
    return result


# ---- the whole runbook ----------------------------------------------------------------------------

def check_runbook(path: Path, dsn: str, *, logs_dir: Path | None = None, values: dict[str, str] | None = None,
                  search_path: str | None = None) -> list[BlockResult]:
    try:
        markdown = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RunbookCheckError(f"cannot read {path}: {getattr(exc, 'strerror', None) or exc}") from exc
    blocks = code_blocks(markdown)
    sql = [b for b in blocks if b.lang in ("sql", "postgresql", "psql", "pgsql")]
    if not sql:
        raise RunbookCheckError(f"{path} has no ```sql block to check")
    filled = {**DEFAULT_VALUES, **(values or {})}
    results = {id(b): [r] for b, r in zip(sql, _check_all_sql(dsn, sql, filled, search_path))}
    lines = read_log_lines(logs_dir) if logs_dir is not None else None
    log_values = {**filled, **_log_values(lines, values or {})}
    for block in blocks:
        if block.lang in ("bash", "sh", "shell", "console"):
            results[id(block)] = [_placed(r, block) for r in check_bash_block(block, lines, logs_dir, log_values)]
        elif id(block) not in results:
            results[id(block)] = [BlockResult("skipped", block.where, block.text, "skipped", f"{block.lang or 'plain'} block")]
    return [r for b in blocks for r in results[id(b)]]


def _placed(result: BlockResult, block: CodeBlock) -> BlockResult:
    result.where = result.where or block.where
    return result


def _log_values(lines: list[LogLine] | None, given: dict[str, str]) -> dict[str, str]:
    """A runId that appears in the logs (the latest), unless --set gave one."""
    if "runId" in given or not lines:
        return {}
    run_ids = [ln.run_id for ln in lines if ln.run_id and ln.msg == "metric.events_published"]
    return {"runId": run_ids[-1]} if run_ids else {}
