"""Ids as clients send them: numeric ids within the catalog's 64-bit integer range, and UUIDs."""

from __future__ import annotations

import uuid

MAX_ID = 2**63 - 1  # the largest integer the catalog (SQLite, PostgreSQL BIGINT) stores


def parse_id(value: object) -> int | None:
    """``value`` as a positive id, or None when it cannot name anything (not digits, 0, too large)."""
    text = str(value).strip() if value is not None else ""
    if not text.isascii() or not text.isdigit():
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


def parse_uuid(value: object) -> str | None:
    """``value`` as a canonical lower-case UUID string, or None when it is not a UUID."""
    try:
        return str(uuid.UUID(str(value).strip()))
    except ValueError:
        return None
