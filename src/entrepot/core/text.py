"""Checks for free text a client stores in the catalog (names, run ids, metadata).

PostgreSQL refuses NUL characters in text and values longer than a VARCHAR column; SQLite
takes both. Checking here keeps the two catalogs alike and turns those failures into 400s.
"""

from __future__ import annotations

from entrepot.core.errors import InvalidInput


def check_text(
    value: str | None, what: str, max_chars: int | None = None, *, code: str | None = None
) -> None:
    """``InvalidInput`` if ``value`` holds a NUL character or is longer than ``max_chars``."""
    if value is None:
        return
    if "\x00" in value:
        raise InvalidInput(f"{what} must not contain NUL characters", code=code)
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise InvalidInput(f"{what} is not valid UTF-8 text", code=code) from exc
    if max_chars is not None and len(value) > max_chars:
        raise InvalidInput(
            f"{what} is {len(value)} characters long; at most {max_chars} are allowed", code=code
        )
