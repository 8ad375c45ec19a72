"""Markdown SQL extraction, placeholder filling and statement splitting (pure text)."""

from __future__ import annotations

from pathlib import Path


from harness.runbook.markdown_sql import code_blocks, fill_placeholders, placeholders, split_statements, sql_blocks

RUNBOOK = Path(__file__).resolve().parents[2] / "docs" / "runbook.md"

DOC = """# Title
## Steps
1. **Check:**
   ```sql
   SELECT id FROM runs
   WHERE id = '<runId>' AND seq = <nextSeq>;
   ```
2. Logs:
   ```bash
   grep "x" logs/*.log
   ```
```nginx
proxy_buffering off;
```
"""


def test_blocks_keep_language_line_and_headings() -> None:
    blocks = code_blocks(DOC)
    assert [b.lang for b in blocks] == ["sql", "bash", "nginx"]
    sql = blocks[0]
    assert sql.text == "SELECT id FROM runs\nWHERE id = '<runId>' AND seq = <nextSeq>;"  # list indent removed
    assert sql.line == 4 and sql.headings == ("Title", "Steps")
    assert sql.where == "Title > Steps (line 4)"


def test_sql_blocks_of_the_real_runbook() -> None:
    blocks = sql_blocks(RUNBOOK.read_text())
    assert len(blocks) == 10
    assert any("pg_locks" in b.text for b in blocks)
    assert placeholders(blocks[2].text) == ["runId", "nextSeq"]


def test_placeholders_are_names_in_angle_brackets_not_comparisons() -> None:
    assert placeholders("WHERE a < b AND c <= d AND id = '<runId>' AND s = <seq> OR t = '<runId>'") == ["runId", "seq"]


def test_fill_escapes_quotes_and_reports_missing() -> None:
    text, missing = fill_placeholders("id = '<runId>' AND seq = <nextSeq> AND x = <other>",
                                      {"runId": "o'brien", "nextSeq": "3"})
    assert text == "id = 'o''brien' AND seq = 3 AND x = <other>"
    assert missing == ["other"]
    assert fill_placeholders("grep '<runId>'", {"runId": "a'b"}, sql=False)[0] == "grep 'a'b'"


def test_split_statements_drops_comments_and_respects_quotes() -> None:
    sql = """-- Only if abandoned
UPDATE runs SET state = 'can;celled' WHERE id = 'x';
-- Remove from outbox queue
DELETE FROM run_outbox WHERE runId = 'x';
"""
    assert split_statements(sql) == ["UPDATE runs SET state = 'can;celled' WHERE id = 'x'",
                                     "DELETE FROM run_outbox WHERE runId = 'x'"]
    assert split_statements("-- only a comment\n") == []


def test_unclosed_fence_runs_to_the_end() -> None:
    blocks = code_blocks("```sql\nSELECT 1")
    assert blocks[0].text == "SELECT 1"
