"""Result values as PostgreSQL clients see them, in plain JSON-able Python.

Format-neutral: a face turns these into its API's JSON, CSV or GeoJSON. Decimals become
floats, non-finite floats ``None``, times ISO 8601 (UTC with a ``Z`` for time-zoned ones, with
milliseconds as PostgreSQL's JSON does), bytes hex, UUIDs text; geometries hex EWKB, the
text form PostgreSQL gives a geometry.
"""

from __future__ import annotations

import datetime as dt
import decimal
import math
import uuid
from collections.abc import Callable, Sequence
from typing import Any

from entrepot.core.sql.geometry import hex_ewkb
from entrepot.core.sql.results import Column

Converter = Callable[[Any], Any]


def json_value(value: Any) -> Any:
    """A DuckDB value as JSON-able Python (lists and dicts converted item by item)."""
    if isinstance(value, decimal.Decimal):
        return float(value)
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dt.datetime):
        if value.tzinfo is None:
            return value.isoformat()
        value = value.astimezone(dt.UTC)
        millis = f".{value.microsecond // 1000:03d}" if value.microsecond else ""
        return value.strftime("%Y-%m-%dT%H:%M:%S") + millis + "Z"
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return str(value)
    if isinstance(value, bytes | bytearray | memoryview):
        return bytes(value).hex()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_value(v) for v in value]
    return value


def converters(columns: Sequence[Column]) -> list[Converter]:
    """Per column: the function that turns its DuckDB values into JSON-able ones (geometries → hex EWKB)."""
    return [_geometry(col.srid) if col.is_geometry else json_value for col in columns]


def _geometry(srid: int) -> Converter:
    def convert(value: Any) -> str | None:
        return None if value is None else hex_ewkb(bytes(value), srid)

    return convert
