"""Streamed renderings of a query result: CARTO's json, csv and geojson; parquet and xlsx via DuckDB.

json, csv and geojson are written incrementally from the result's row batches, so a large
result never sits in memory. parquet and xlsx are written by DuckDB into a temporary file of
the sandbox (``service.run(..., into=…)``) and streamed from there.

Values are rendered like PostgreSQL/CARTO: geometries as hex EWKB (json, csv) or GeoJSON
geometry objects (geojson); timestamps ISO 8601; decimals as numbers.
"""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import json
import math
import uuid
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from entrepot.core import errors as E
from entrepot.core.sql.geometry import hex_ewkb, round_geojson, srid_for
from entrepot.core.sql.service import HIDDEN_TIMESTAMP, Column, Result

# format -> (media type, file extension)
FORMATS: dict[str, tuple[str, str]] = {
    "json": ("application/json; charset=utf-8", "json"),
    "geojson": ("application/json; charset=utf-8", "geojson"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}
FILE_FORMATS = ("parquet", "xlsx")  # written by DuckDB to a file first
GEOJSON_COLUMN = "__entrepot_geojson"
HIDDEN_IN_GEOJSON = ("the_geom", "the_geom_webmercator", GEOJSON_COLUMN)
FLUSH_BYTES = 256 * 1024
# the Keboola tables' row-change time is internal to the tables face: SQL results never show it
HIDDEN_COLUMN = HIDDEN_TIMESTAMP


def check_format(name: str | None) -> str:
    fmt = (name or "json").lower()
    if fmt not in FORMATS:
        raise E.InvalidInput(
            f"Invalid format: {name} (entrepot supports {', '.join(FORMATS)})", code="sql.invalidFormat"
        )
    return fmt


# -- field types -----------------------------------------------------------------------------

_NUMBER = {
    "TINYINT": "int2", "SMALLINT": "int2", "INTEGER": "int4", "BIGINT": "int8", "HUGEINT": "numeric",
    "UTINYINT": "int2", "USMALLINT": "int4", "UINTEGER": "int8", "UBIGINT": "numeric", "UHUGEINT": "numeric",
    "FLOAT": "float4", "DOUBLE": "float8",
}  # fmt: skip
_DATE = {
    "DATE": "date", "TIME": "time", "TIMESTAMP": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "TIMESTAMP_S": "timestamp", "TIMESTAMP_MS": "timestamp", "TIMESTAMP_NS": "timestamp", "INTERVAL": "interval",
}  # fmt: skip


def is_geometry(column: Column) -> bool:
    return column.type.upper().startswith("GEOMETRY")


def field(column: Column) -> dict[str, Any]:
    """CARTO's description of a result column (``fields`` of the json format)."""
    kind = column.type.upper()
    if kind.endswith("[]"):
        inner = field(Column(column.name, column.type[:-2]))
        return {"type": f"{inner['type']}[]", "pgtype": f"_{inner.get('pgtype', 'text')}"}
    if is_geometry(column):
        return {
            "type": "geometry",
            "wkbtype": "Geometry",
            "dims": 2,
            "srid": srid_for(column.name, column.type),
        }
    if kind in _NUMBER:
        return {"type": "number", "pgtype": _NUMBER[kind]}
    if kind.startswith("DECIMAL"):
        return {"type": "number", "pgtype": "numeric"}
    if kind == "BOOLEAN":
        return {"type": "boolean", "pgtype": "bool"}
    if kind in _DATE:
        return {"type": "date", "pgtype": _DATE[kind]}
    if kind == "JSON":
        return {"type": "json", "pgtype": "json"}
    if kind == "BLOB":
        return {"type": "string", "pgtype": "bytea"}
    if kind == "UUID":
        return {"type": "string", "pgtype": "uuid"}
    return {"type": "string", "pgtype": "text"}


# -- values --------------------------------------------------------------------------------------


def _json_value(value: Any) -> Any:
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
        return {str(k): _json_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json_value(v) for v in value]
    return value


def _converters(columns: Sequence[Column]) -> list[Any]:
    """Per column: a function turning a DuckDB value into its rendered form (geometries → hex EWKB)."""
    out: list[Any] = []
    for col in columns:
        if is_geometry(col):
            srid = srid_for(col.name, col.type)
            out.append(lambda v, srid=srid: None if v is None else hex_ewkb(bytes(v), srid))
        else:
            out.append(_json_value)
    return out


def visible_columns(columns: Sequence[Column], skip: set[str]) -> list[int]:
    """Indexes of the columns to render: not skipped, and not the tables face's hidden ``_timestamp``."""
    return [i for i, c in enumerate(columns) if c.name not in skip and c.name != HIDDEN_COLUMN]


# -- json ----------------------------------------------------------------------------------------


def _json_array(
    result: Result,
    head: str,
    item: Callable[[tuple[Any, ...]], Any],
    tail: Callable[[int], str],
    max_rows: int | None,
) -> Iterator[bytes]:
    """``head`` + the rows rendered by ``item`` as a JSON array + ``tail(row count)``, streamed.

    An error before the first bytes leave propagates (the caller still answers with its status);
    after that it ends the document with CARTO's ``"error"`` key instead of ``tail``.
    """
    buf = io.StringIO()
    buf.write(head)
    sent = False
    count = 0
    try:
        for batch in result.batches:
            for row in batch:
                count += 1
                if max_rows is not None and count > max_rows:
                    raise E.PayloadTooLarge(_too_many(max_rows), code="sql.tooManyRows")
                if count > 1:
                    buf.write(",")
                buf.write(json.dumps(item(row), default=str))
            if buf.tell() >= FLUSH_BYTES:
                sent = True
                yield buf.getvalue().encode()
                buf = io.StringIO()
    except E.EntrepotError as exc:
        if not sent:
            raise
        buf.write('],"error":' + json.dumps([exc.message]) + "}")
        yield buf.getvalue().encode()
        return
    buf.write(tail(count))
    yield buf.getvalue().encode()


def json_chunks(result: Result, *, skip: set[str], max_rows: int | None) -> Iterator[bytes]:
    """``{"rows": [...], "time": …, "fields": {…}, "total_rows": n}``, written as rows arrive."""
    keep = visible_columns(result.columns, skip)
    names = [result.columns[i].name for i in keep]
    convert = _converters(result.columns)
    fields = {result.columns[i].name: field(result.columns[i]) for i in keep}

    def tail(count: int) -> str:
        total = result.affected if result.affected is not None and not result.columns else count
        return f'],"time":{result.elapsed:.3f},"fields":{json.dumps(fields)},"total_rows":{total}}}'

    def item(row: tuple[Any, ...]) -> dict[str, Any]:
        return {names[j]: convert[i](row[i]) for j, i in enumerate(keep)}

    return _json_array(result, '{"rows":[', item, tail, max_rows)


def _too_many(limit: int) -> str:
    return (
        f"the result has more than {limit} rows, the most a synchronous json answer may hold (setting "
        "sql_max_rows); use format=csv or parquet, COPY … TO STDOUT (copyto) or a batch job that writes a table"
    )


# -- csv -----------------------------------------------------------------------------------------


def csv_chunks(result: Result, *, skip: set[str]) -> Iterator[bytes]:
    """CARTO's csv: a header, every value as text, ``the_geom`` first (hex EWKB), CRLF line ends."""
    keep = visible_columns(result.columns, skip)
    geom = [i for i in keep if result.columns[i].name == "the_geom"]
    keep = geom + [i for i in keep if i not in geom]
    convert = _converters(result.columns)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow([result.columns[i].name for i in keep])
    for batch in result.batches:
        for row in batch:
            writer.writerow([_csv_text(convert[i](row[i])) for i in keep])
        if buf.tell() >= FLUSH_BYTES:
            yield buf.getvalue().encode()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue().encode()


def _csv_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict | list):
        return json.dumps(value)
    return str(value)


# -- geojson -------------------------------------------------------------------------------------


def geojson_chunks(result: Result, *, skip: set[str], dp: int, max_rows: int | None) -> Iterator[bytes]:
    """A FeatureCollection: ``the_geom`` as each feature's geometry, the other columns as properties.

    The query was wrapped (``geojson_wrap``) so that a column carries ``ST_AsGeoJSON(the_geom)``.
    """
    names = [c.name for c in result.columns]
    if GEOJSON_COLUMN not in names:
        raise E.InvalidInput('column "the_geom" does not exist', code="sql.missingColumn")
    geo = names.index(GEOJSON_COLUMN)
    keep = [i for i in visible_columns(result.columns, skip) if names[i] not in HIDDEN_IN_GEOJSON]
    convert = _converters(result.columns)

    def item(row: tuple[Any, ...]) -> dict[str, Any]:
        geometry = round_geojson(json.loads(row[geo]), dp) if row[geo] is not None else None
        properties = {names[i]: convert[i](row[i]) for i in keep}
        return {"type": "Feature", "geometry": geometry, "properties": properties}

    return _json_array(result, '{"type":"FeatureCollection","features":[', item, lambda _: "]}", max_rows)


def geojson_wrap(sql: str) -> str:
    """The query with an extra column holding ``the_geom`` as GeoJSON text."""
    return f"SELECT *, ST_AsGeoJSON(the_geom) AS {GEOJSON_COLUMN} FROM ({sql}) AS entrepot_geojson"
