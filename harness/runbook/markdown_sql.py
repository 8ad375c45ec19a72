"""Code blocks of a Markdown runbook, their placeholders, and SQL statement splitting. Pure text.

A block is a fenced code block (```sql ... ```, also indented inside a list item) with its language,
its first line number and the headings above it, so a report can say "Run Stuck > Steps, line 18".
Placeholders are the runbook's `<name>` tokens (`<runId>`, `<nextSeq>`); `<` followed by a space or
`=` (a comparison) is not one.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

__all__ = ["CodeBlock", "code_blocks", "fill_placeholders", "placeholders", "split_statements", "sql_blocks"]

_FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>```+|~~~+)\s*(?P<lang>[\w+-]*)")
_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_PLACEHOLDER = re.compile(r"<([A-Za-z_][A-Za-z0-9_]*)>")


@dataclass(frozen=True)
class CodeBlock:
    lang: str
    text: str
    line: int  # 1-based line of the opening fence
    headings: tuple[str, ...] = field(default_factory=tuple)

    @property
    def where(self) -> str:
        return f"{' > '.join(self.headings[-2:]) or 'top'} (line {self.line})"


def code_blocks(markdown: str) -> list[CodeBlock]:
    """Every fenced block, in order; an unclosed fence runs to the end of the file."""
    blocks: list[CodeBlock] = []
    headings: list[tuple[int, str]] = []
    lines = markdown.splitlines()
    i = 0
    while i < len(lines):
        heading, fence = _HEADING.match(lines[i]), _FENCE.match(lines[i])
        if heading and not lines[i].startswith(" "):
            level = len(heading.group(1))
            headings = [h for h in headings if h[0] < level] + [(level, heading.group(2))]
        elif fence:
            i = _read_block(lines, i, fence, tuple(h[1] for h in headings), blocks)
        i += 1
    return blocks


def _read_block(lines: list[str], start: int, fence: re.Match[str], headings: tuple[str, ...],
                out: list[CodeBlock]) -> int:
    indent, marker = len(fence.group("indent")), fence.group("fence")
    body: list[str] = []
    i = start + 1
    while i < len(lines) and not lines[i].strip().startswith(marker):
        line = lines[i]
        body.append(line[indent:] if line[:indent].strip() == "" else line.lstrip())
        i += 1
    out.append(CodeBlock(fence.group("lang").lower(), "\n".join(body).strip("\n"), start + 1, headings))
    return i


def sql_blocks(markdown: str) -> list[CodeBlock]:
    return [b for b in code_blocks(markdown) if b.lang in ("sql", "postgresql", "psql", "pgsql")]


def placeholders(text: str) -> list[str]:
    """Placeholder names in order of first appearance."""
    seen: dict[str, None] = {}
    for name in _PLACEHOLDER.findall(text):
        seen.setdefault(name, None)
    return list(seen)


def fill_placeholders(text: str, values: Mapping[str, str], *, sql: bool = True) -> tuple[str, list[str]]:
    """Replace `<name>` by its value (SQL-escaped when `sql`); returns the text and the names left unfilled."""
    missing: list[str] = []

    def sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            missing.append(name)
            return match.group(0)
        value = str(values[name])
        return value.replace("'", "''") if sql else value

    return _PLACEHOLDER.sub(sub, text), sorted(set(missing))


def split_statements(sql: str) -> list[str]:
    """Statements of a block, with `--` comments dropped; `;` inside quotes does not split."""
    statements: list[str] = []
    current: list[str] = []
    quote: str | None = None
    i = 0
    while i < len(sql):
        ch = sql[i]
        if quote is None and sql.startswith("--", i):
            i = _line_end(sql, i)
            continue
        if ch in ("'", '"'):
            quote = None if quote == ch else (ch if quote is None else quote)
        if ch == ";" and quote is None:
            _flush(current, statements)
        else:
            current.append(ch)
        i += 1
    _flush(current, statements)
    return statements


def _line_end(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def _flush(current: list[str], out: list[str]) -> None:
    statement = "".join(current).strip()
    if statement:
        out.append(statement)
    current.clear()
