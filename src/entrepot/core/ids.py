"""Numeric ids as clients send them: ASCII digits within the catalog's 64-bit integer range."""

from __future__ import annotations

MAX_ID = 2**63 - 1  # the largest integer the catalog (SQLite, PostgreSQL BIGINT) stores


def parse_id(value: object) -> int | None:
    """``value`` as a positive id, or None when it cannot name anything (not digits, 0, too large)."""
    text = str(value).strip() if value is not None else ""
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None
