"""Mapbox Vector Tiles by DuckDB spatial's ``ST_AsMVT``: tile checks, tile bounds, one layer's SQL, merging.

Tiles use the XYZ (Google) scheme in EPSG:3857: tile ``(0, 0)`` of a zoom is the north-west
corner, ``y`` grows southwards (:func:`tile_bounds` equals DuckDB's ``ST_TileEnvelope``).

:func:`layer_sql` builds one statement per layer, run by the caller on a connection with the
spatial extension loaded. What it does to the rows of the source, all in DuckDB:

- **Skips** NULL and empty geometries and those whose bounding box misses the tile grown by the
  buffer (a bounding-box test, no GEOS predicate, so a big table is not transformed).
- **Repairs** invalid polygons with ``ST_MakeValid`` (``ST_AsMVTGeom`` fails the whole statement
  with a GEOS ``TopologyException`` on a self-intersecting polygon) and keeps only the highest
  dimension of a geometry collection (``ST_AsMVT`` rejects collections).
- **Simplifies** lines and polygons with ``ST_Simplify`` (GEOS Douglas-Peucker, which repairs
  polygon topology: its output stayed valid in our checks) at half a tile pixel (:func:`tolerance`),
  invisible once quantised to the tile grid. Points are left alone. For 9,672 small polygons of
  a zoom-4 tile this makes the tile 506 KB instead of 1.2 MB, in 0.3 s instead of 0.8 s
  (``ST_AsMVTGeom`` quantises but keeps every distinct vertex; ``ST_SimplifyPreserveTopology``
  gives the same size 3x slower). Then ``ST_AsMVTGeom`` clips to the buffered tile and
  quantises; geometries smaller than a pixel come back NULL and are dropped.
- **Attributes** are exactly the requested columns, converted to what ``ST_AsMVT`` accepts
  (VARCHAR, FLOAT, DOUBLE, INTEGER, BIGINT, BOOLEAN; see :func:`attribute_sql`). NULL values are
  left out of their feature.
- **Feature id**: ``id_column`` (CARTO's ``cartodb_id``) read from the *source*, cast to BIGINT;
  it is an attribute as well only when it is among the columns (``ST_AsMVT`` leaves its id column
  out of the properties). A NULL, negative or non-numeric id gives a feature without id. The
  column must exist in the source: pass ``None`` for a source without it.
- **Empty**: a tile without features is ``b""`` (``ST_AsMVT`` of no rows is not empty: it encodes
  a layer without features).

The clipped geometry is named once (``list_transform([x], lambda …)[1]``): a filter on it in an
outer query makes DuckDB evaluate ``ST_AsMVTGeom`` once per mention (3x the time).
"""

from __future__ import annotations

from collections.abc import Sequence

import duckdb

from entrepot.core import errors as E
from entrepot.core.engine.statements import quote_ident, quote_literal

__all__ = [
    "BUFFER",
    "EXTENT",
    "MAX_ZOOM",
    "attribute_sql",
    "check_tile",
    "layer_sql",
    "merge",
    "source_columns",
    "tile_bounds",
    "tolerance",
]

# ST_TileEnvelope takes INTEGER tile indices: 2**30 - 1 fits, and a pixel at zoom 30
# (~9 µm) is still far above a double's resolution at the mercator extent (~4 nm).
MAX_ZOOM = 30
EXTENT = 4096  # tile coordinates per side, the MVT default
BUFFER = 64  # tile coordinates kept around the tile so lines and symbols join across tiles
HALF_WORLD = 20037508.342789244  # EPSG:3857's half width: pi * 6378137

# Types ST_AsMVT takes as they are; integers it does not take become BIGINT, decimals and
# integers that may not fit a BIGINT become DOUBLE, everything else its text.
_NATIVE = frozenset({"VARCHAR", "FLOAT", "DOUBLE", "INTEGER", "BIGINT", "BOOLEAN"})
_TO_BIGINT = frozenset({"TINYINT", "SMALLINT", "UTINYINT", "USMALLINT", "UINTEGER"})
_TO_DOUBLE = frozenset({"UBIGINT", "HUGEINT", "UHUGEINT"})


def check_tile(z: int, x: int, y: int) -> None:
    """``InvalidInput`` unless ``0 <= z <= MAX_ZOOM`` and ``0 <= x, y < 2**z``."""
    if not 0 <= z <= MAX_ZOOM:
        raise E.InvalidInput(
            f"zoom {z} is out of range: it must be 0 to {MAX_ZOOM}", code="maps.tile.outOfRange"
        )
    size = 1 << z
    if not (0 <= x < size and 0 <= y < size):
        raise E.InvalidInput(
            f"tile {z}/{x}/{y} is out of range: at zoom {z}, x and y must be 0 to {size - 1}",
            code="maps.tile.outOfRange",
        )


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    """``(xmin, ymin, xmax, ymax)`` of tile z/x/y in EPSG:3857, as ``ST_TileEnvelope(z, x, y)``."""
    check_tile(z, x, y)
    size = 2 * HALF_WORLD / (1 << z)
    return (
        -HALF_WORLD + x * size,
        HALF_WORLD - (y + 1) * size,
        -HALF_WORLD + (x + 1) * size,
        HALF_WORLD - y * size,
    )


def tolerance(z: int, extent: int = EXTENT) -> float:
    """Half a tile pixel at zoom ``z`` in EPSG:3857 metres: the simplification tolerance."""
    return 2 * HALF_WORLD / (1 << z) / extent / 2


def attribute_sql(expr: str, duckdb_type: str) -> str:
    """SQL of the value ``expr`` of type ``duckdb_type`` as an ``ST_AsMVT`` property.

    VARCHAR, FLOAT, DOUBLE, INTEGER, BIGINT and BOOLEAN pass; smaller or unsigned integers become
    BIGINT; DECIMAL, UBIGINT and HUGEINT become DOUBLE (so styles can compare them as numbers);
    anything else (timestamps, dates, UUID, JSON, geometry, lists…) becomes its VARCHAR text.
    """
    kind = duckdb_type.strip().upper()
    if kind in _NATIVE:
        return expr
    if kind in _TO_BIGINT:
        return f"CAST({expr} AS BIGINT)"
    if kind in _TO_DOUBLE or kind == "DECIMAL" or kind.startswith("DECIMAL("):
        return f"CAST({expr} AS DOUBLE)"
    return f"CAST({expr} AS VARCHAR)"


def source_columns(conn: duckdb.DuckDBPyConnection, source_sql: str) -> list[tuple[str, str]]:
    """``(name, DuckDB type)`` of each result column of ``source_sql``, bound but not run."""
    relation = conn.sql(source_sql)
    return [(name, str(kind)) for name, kind in zip(relation.columns, relation.types, strict=True)]


def layer_sql(
    source_sql: str,
    layer_name: str,
    z: int,
    x: int,
    y: int,
    *,
    columns: Sequence[tuple[str, str]],
    geometry: str = "the_geom_webmercator",
    id_column: str | None = "cartodb_id",
    extent: int = EXTENT,
    buffer: int = BUFFER,
    simplify: bool = True,
) -> str:
    """DuckDB SQL of one row, one BLOB column ``mvt``: the layer ``layer_name`` of ``source_sql`` in tile z/x/y.

    ``columns`` are the attributes as ``(name, DuckDB type)`` pairs (see :func:`source_columns`);
    ``geometry`` names the source's EPSG:3857 geometry column and ``id_column`` a source column
    holding the feature id (``None``: no ids). ``simplify=False`` keeps every vertex (for tests).
    """
    check_tile(z, x, y)
    if extent <= 0 or buffer < 0:
        raise E.InvalidInput(
            "the tile extent must be positive and the buffer not negative", code="maps.tile.extent"
        )
    xmin, ymin, xmax, ymax = tile_bounds(z, x, y)
    margin = buffer * (xmax - xmin) / extent
    envelope = f"ST_MakeEnvelope({xmin!r}, {ymin!r}, {xmax!r}, {ymax!r})"
    grown = f"ST_MakeEnvelope({xmin - margin!r}, {ymin - margin!r}, {xmax + margin!r}, {ymax + margin!r})"

    names = {name for name, _ in columns}
    geom_key = _fresh("mvt_geom", names)
    id_key = _fresh("mvt_id", names | {geom_key})
    fields = [f"{quote_literal(geom_key)}: geom"]
    fields += [f"{quote_literal(name)}: {quote_ident(f'a{i}')}" for i, (name, _) in enumerate(columns)]
    selects = [
        attribute_sql(f"_src.{quote_ident(name)}", kind) + f" AS {quote_ident(f'a{i}')}"
        for i, (name, kind) in enumerate(columns)
    ]
    id_args = ""
    if id_column is not None:
        fields.append(f"{quote_literal(id_key)}: fid")
        selects.append(f"TRY_CAST(_src.{quote_ident(id_column)} AS BIGINT) AS fid")
        id_args = f", {quote_literal(id_key)}"

    prepared = "CASE WHEN ST_Dimension(g) = 2 AND NOT ST_IsValid(g) THEN ST_MakeValid(g) ELSE g END"
    if simplify:
        prepared = (
            f"CASE WHEN ST_Dimension(g) = 0 THEN g ELSE ST_Simplify({prepared}, {tolerance(z, extent)!r}) END"
        )
    clipped = (
        f"ST_AsMVTGeom(ST_CollectionExtract({prepared}), ST_Extent({envelope}), {extent}, {buffer}, true)"
    )
    kept = "".join(f", {quote_ident(f'a{i}')}" for i in range(len(columns))) + (
        ", fid" if id_column is not None else ""
    )
    struct = "{" + ", ".join(fields) + "}"
    mvt_args = f"{quote_literal(layer_name)}, {extent}, {quote_literal(geom_key)}{id_args}"
    return f"""WITH _rows AS (
    SELECT CAST(_src.{quote_ident(geometry)} AS GEOMETRY) AS g{"".join(f", {s}" for s in selects)}
    FROM (
{source_sql}
) AS _src
), _features AS (
    SELECT list_transform([ST_CollectionExtract({clipped})],
        lambda _m: CASE WHEN ST_IsEmpty(_m) THEN NULL ELSE _m END)[1] AS geom{kept}
    FROM _rows
    WHERE g IS NOT NULL AND NOT ST_IsEmpty(g) AND g && {grown}
)
SELECT CASE WHEN count(geom) = 0 THEN ''::BLOB
    ELSE ST_AsMVT({struct}, {mvt_args}) END AS mvt
FROM _features"""


def merge(layers: Sequence[bytes]) -> bytes:
    """One tile of the layers of several tiles: their concatenation.

    A tile is a protobuf message whose only field is the repeated ``layers`` (3), so encoded tiles
    concatenated decode as one tile holding every layer, in order (``b""`` adds nothing). Layer
    names must differ: a tile's layers are keyed by name.
    """
    return b"".join(layers)


def _fresh(base: str, taken: set[str]) -> str:
    """``base`` with underscores prepended until it is not in ``taken``."""
    while base in taken:
        base = "_" + base
    return base
