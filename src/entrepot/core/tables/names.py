"""Keboola naming rules for buckets, tables and columns (reference §1.8).

Bucket ids are ``<stage>.c-<name>``, table ids ``<bucket id>.<table>``. An id that does not
parse names nothing, so parsing failures are ``NotFound`` (Keboola answers 404, never 400);
names given for *new* things are validated with ``InvalidInput``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from entrepot.core.errors import InvalidInput, NotFound

STAGES = ("in", "out")
BUCKET_PREFIX = "c-"
NAME_MAX = 96
COLUMN_MAX = 64
MAX_COLUMNS = 1000  # per table; DuckLake fails to commit somewhere under 2000
RESERVED_COLUMN_PREFIX = "_timestamp"

_NAME_RE = re.compile(r"^[A-Za-z0-9_-]+\Z")
_COLUMN_RE = re.compile(r"^[A-Za-z0-9_]+\Z")


def validate_bucket_name(name: str | None) -> str:
    """A bucket ``name`` as given on create (without ``c-``); ``InvalidInput`` otherwise."""
    if not name:
        raise InvalidInput("parameter name is required: the bucket name", code="buckets.validation")
    if name.startswith(BUCKET_PREFIX):
        name = name[len(BUCKET_PREFIX) :]
    if not _NAME_RE.match(name) or len(name) > NAME_MAX:
        raise InvalidInput(
            f"invalid bucket name {name!r}: use 1-{NAME_MAX} letters, digits, '_' and '-'",
            code="buckets.validation",
        )
    return name


def validate_stage(stage: str | None) -> str:
    stage = (stage or "in").lower()
    if stage not in STAGES:
        raise InvalidInput(f"invalid bucket stage {stage!r}: use 'in' or 'out'", code="buckets.validation")
    return stage


def bucket_ident(stage: str, name: str) -> str:
    """``in`` + ``main`` → ``in.c-main``."""
    return f"{stage}.{BUCKET_PREFIX}{name}"


def parse_bucket_id(bucket_id: str) -> tuple[str, str]:
    """``in.c-main`` → (``in``, ``main``); ``NotFound`` if it is not a bucket id."""
    stage, dot, rest = (bucket_id or "").partition(".")
    name = rest[len(BUCKET_PREFIX) :] if rest.startswith(BUCKET_PREFIX) else ""
    if not dot or stage not in STAGES or not _NAME_RE.match(name) or len(name) > NAME_MAX:
        raise NotFound(f"bucket {bucket_id!r} not found", code="buckets.notFound")
    return stage, name


def validate_table_name(name: str | None) -> str:
    """A table name for a new table; ``InvalidInput`` otherwise."""
    if not name:
        raise InvalidInput("parameter name is required: the table name", code="tables.validation")
    if not _NAME_RE.match(name) or len(name) > NAME_MAX:
        raise InvalidInput(
            f"invalid table name {name!r}: use 1-{NAME_MAX} letters, digits, '_' and '-'",
            code="tables.validation",
        )
    return name


def parse_table_id(table_id: str) -> tuple[str, str]:
    """``in.c-main.t`` → (``in.c-main``, ``t``); ``NotFound`` if it is not a table id."""
    parts = (table_id or "").split(".")
    if len(parts) != 3 or not _NAME_RE.match(parts[2]) or len(parts[2]) > NAME_MAX:
        raise NotFound(f"table {table_id!r} not found", code="tables.notFound")
    bucket = f"{parts[0]}.{parts[1]}"
    try:
        parse_bucket_id(bucket)
    except NotFound:
        raise NotFound(f"table {table_id!r} not found", code="tables.notFound") from None
    return bucket, parts[2]


def validate_column_names(names: Sequence[str], *, what: str = "the CSV header") -> list[str]:
    """Column names for a table: non-empty, ``[A-Za-z0-9_]``, unique (case-insensitive), not reserved."""
    if len(names) > MAX_COLUMNS:
        raise InvalidInput(
            f"{what} has {len(names)} columns; a table has at most {MAX_COLUMNS}",
            code="tables.tooManyColumns",
        )
    seen: dict[str, str] = {}
    out: list[str] = []
    for i, name in enumerate(names, 1):
        if not name or not name.strip():
            raise InvalidInput(
                f"column {i} of {what} has no name; name every column", code="tables.invalidColumn"
            )
        if not _COLUMN_RE.match(name) or len(name) > COLUMN_MAX:
            raise InvalidInput(
                f"invalid column name {name!r} in {what}: use 1-{COLUMN_MAX} letters, digits and '_'",
                code="tables.invalidColumn",
            )
        if name.lower().startswith(RESERVED_COLUMN_PREFIX):
            raise InvalidInput(
                f"column name {name!r} in {what} is reserved (names starting with {RESERVED_COLUMN_PREFIX!r} "
                "hold the row change time); rename the column",
                code="tables.invalidColumn",
            )
        if name.lower() in seen:
            raise InvalidInput(
                f"{what} names column {name!r} twice (names are case-insensitive)",
                code="tables.duplicateColumn",
            )
        seen[name.lower()] = name
        out.append(name)
    return out
