"""CARTO's renderings of a query result: json, csv and geojson, streamed; parquet and xlsx as files.

json, csv and geojson are written incrementally from the result's row batches, so a large
result never sits in memory. parquet and xlsx are written by DuckDB into a temporary file
(``service.query_file``) and streamed from there.

Values are rendered like PostgreSQL/CARTO (``core.sql.values``): geometries as hex EWKB (json,
csv) or GeoJSON geometry objects (geojson); timestamps ISO 8601; decimals as numbers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

from entrepot.core import errors as E
from entrepot.core.sql.geometry import round_geojson
from entrepot.core.sql.results import Column, Row, Rows
from entrepot.core.sql.values import converters

# format -> (media type, file extension)
FORMATS: dict[str, tuple[str, str]] = {
    "json": ("application/json; charset=utf-8", "json"),
    "geojson": ("application/json; charset=utf-8", "geojson"),
    "csv": ("text/csv; charset=utf-8", "csv"),
    "parquet": ("application/vnd.apache.parquet", "parquet"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx"),
}
FILE_FORMATS = ("parquet", "xlsx")  # written by DuckDB to a file first
HIDDEN_IN_GEOJSON = ("the_geom", "the_geom_webmercator")  # the geometry is the feature's own
FLUSH_BYTES = 256 * 1024


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


def field(column: Column) -> dict[str, Any]:
    """CARTO's description of a result column (``fields`` of the json format)."""
    kind = column.type.upper()
    if kind.endswith("[]"):
        inner = field(Column(column.name, column.type[:-2]))
        return {"type": f"{inner['type']}[]", "pgtype": f"_{inner.get('pgtype', 'text')}"}
    if column.is_geometry:
        return {"type": "geometry", "wkbtype": "Geometry", "dims": 2, "srid": column.srid}
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


def _shown(result: Rows, skip: set[str]) -> list[int]:
    """Indexes of the columns to render: those not named in ``skipfields``."""
    return [i for i, c in enumerate(result.columns) if c.name not in skip]


# -- json ----------------------------------------------------------------------------------------


def _json_array(
    result: Rows,
    head: str,
    item: Callable[[Row], Any],
    tail: Callable[[int], str],
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


def json_chunks(result: Rows, *, skip: set[str]) -> Iterator[bytes]:
    """``{"rows": [...], "time": …, "fields": {…}, "total_rows": n}``, written as rows arrive."""
    keep = _shown(result, skip)
    names = [result.columns[i].name for i in keep]
    convert = converters(result.columns)
    fields = {result.columns[i].name: field(result.columns[i]) for i in keep}

    def tail(count: int) -> str:
        total = result.affected if result.affected is not None and not result.columns else count
        return f'],"time":{result.elapsed:.3f},"fields":{json.dumps(fields)},"total_rows":{total}}}'

    def item(row: Row) -> dict[str, Any]:
        return {names[j]: convert[i](row[i]) for j, i in enumerate(keep)}

    return _json_array(result, '{"rows":[', item, tail)


# -- csv -----------------------------------------------------------------------------------------


def csv_chunks(result: Rows, *, skip: set[str]) -> Iterator[bytes]:
    """CARTO's csv: a header, every value as text, ``the_geom`` first (hex EWKB), CRLF line ends."""
    keep = _shown(result, skip)
    geom = [i for i in keep if result.columns[i].name == "the_geom"]
    keep = geom + [i for i in keep if i not in geom]
    convert = converters(result.columns)
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


def geojson_chunks(result: Rows, *, skip: set[str], dp: int) -> Iterator[bytes]:
    """A FeatureCollection: ``the_geom`` as each feature's geometry, the other columns as properties.

    The query was run with ``geojson=True``, so a column (``result.geojson``) carries
    ``ST_AsGeoJSON(the_geom)``.
    """
    geo = result.geojson
    if geo is None:
        raise E.InvalidInput('column "the_geom" does not exist', code="sql.missingColumn")
    names = [c.name for c in result.columns]
    hidden = (*HIDDEN_IN_GEOJSON, names[geo])
    keep = [i for i in _shown(result, skip) if names[i] not in hidden]
    convert = converters(result.columns)

    def item(row: Row) -> dict[str, Any]:
        geometry = round_geojson(json.loads(row[geo]), dp) if row[geo] is not None else None
        properties = {names[i]: convert[i](row[i]) for i in keep}
        return {"type": "Feature", "geometry": geometry, "properties": properties}

    return _json_array(result, '{"type":"FeatureCollection","features":[', item, lambda _: "]}")
