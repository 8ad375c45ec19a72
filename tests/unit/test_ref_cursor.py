from __future__ import annotations

import pytest

from reference_impl.cursor import MAX_SEQ, CursorError, resolve_cursor


def test_no_cursor_starts_at_zero() -> None:
    cursor = resolve_cursor(None, None)
    assert (cursor.value, cursor.source, cursor.is_resume) == (0, "none", False)


def test_from_seq_is_used_without_header() -> None:
    cursor = resolve_cursor("5", None)
    assert (cursor.value, cursor.source, cursor.is_resume) == (5, "fromSeq", True)


def test_last_event_id_wins_over_from_seq() -> None:
    cursor = resolve_cursor("2", "7")
    assert (cursor.value, cursor.source) == (7, "last-event-id")


def test_empty_header_counts_as_absent() -> None:
    assert resolve_cursor("3", "").value == 3


def test_header_wins_even_when_from_seq_is_garbage() -> None:
    assert resolve_cursor("garbage", "4").value == 4


def test_max_seq_is_accepted() -> None:
    assert resolve_cursor(str(MAX_SEQ), None).value == 2**53


@pytest.mark.parametrize("raw", ["-1", "abc", "1.5", "", " ", "1e3", "0x10", "+3", "1_000", str(2**53 + 1), "9" * 40])
def test_bad_from_seq_is_rejected(raw: str) -> None:
    with pytest.raises(CursorError):
        resolve_cursor(raw, None)


@pytest.mark.parametrize("raw", ["-5", "garbage", "12abc", str(2**60)])
def test_bad_last_event_id_is_rejected(raw: str) -> None:
    with pytest.raises(CursorError, match="Last-Event-ID"):
        resolve_cursor("1", raw)
