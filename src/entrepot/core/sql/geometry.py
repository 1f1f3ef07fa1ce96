"""PostGIS-compatible geometry on DuckDB spatial: SRID rules, ``pg_*`` SQL macros, EWKB/GeoJSON helpers.

DuckDB (1.5, spatial) stores GEOMETRY values as plain WKB without an SRID. A coordinate
reference system (CRS) is a property of the *type*, not of the value: ``ST_SetCRS(g, 'EPSG:4326')``
returns a ``GEOMETRY('EPSG:4326')`` and ``ST_CRS(g)`` reads it back (NULL for a plain GEOMETRY).
DuckLake tables drop that CRS: stored columns come back as plain GEOMETRY.

**SRID rule.** The SRID reported for a geometry (``pg_srid``, EWKB/EWKT output, the ``srid`` of a
result field) is, first found:

1. the CRS of its type when it has one (``EPSG:n`` → n, ``OGC:CRS84`` → 4326);
2. by column name (result rendering only, :func:`srid_for`): ``the_geom_webmercator`` → 3857;
3. 4326 (CARTO's convention: ``the_geom`` and everything else is lon/lat).

**Constant SRIDs only.** ``ST_SetCRS`` needs a *constant* CRS (the CRS is part of the result
type), so ``pg_setsrid(g, 4326)``, ``pg_geometry(t, 3857)`` and ``pg_transform(g, 3857)`` work when
the SRID is a literal (or a constant-foldable expression) and fail to bind with
``ST_SetCRS: CRS argument must be constant!`` when it comes from a column. For the same reason
one result column cannot mix SRIDs (``UNION`` of a 4326 and a 3857 geometry fails to bind with
``Cannot cast GEOMETRY with CRS …``), and ``pg_geometry(t)`` of EWKT text ignores the ``SRID=n;``
prefix (the value keeps no CRS; the rule above then applies).

**Macros.** :data:`MACROS` are ``CREATE OR REPLACE TEMP MACRO`` statements, in dependency order.
Temp macros live in the connection's ``temp`` catalog, which stays on the search path after
``USE lake``, so they are callable unqualified. They are per *connection*: run them on every
connection (and every ``conn.cursor()``, which is a new connection) that executes user SQL.
Macros in ``memory.main`` would be shared by cursors but are not found after ``USE lake``
(``USE`` resets the search path to ``lake.main``). DuckDB binds a macro body at creation when
its parameters' types can be resolved, so the bodies keep ``'EPSG:' || n`` (unresolved, bound
at each call with the caller's constant) rather than ``CAST(n AS VARCHAR)`` (which fails with
the constant-CRS error at creation).
"""

from __future__ import annotations

import math
import re
import struct
from typing import Any

__all__ = [
    "GEOMETRY_TYPE_NAMES",
    "MACROS",
    "WEBMERCATOR_EXTENT",
    "hex_ewkb",
    "round_geojson",
    "srid_for",
    "wkb_type_name",
]

DEFAULT_SRID = 4326
WEBMERCATOR_SRID = 3857
WEBMERCATOR_COLUMN = "the_geom_webmercator"
# CARTO clips lon/lat geometries to this extent before projecting to web mercator.
WEBMERCATOR_EXTENT = (-180.0, -85.0511, 180.0, 85.0511)
EARTH_RADIUS = 6378137.0  # EPSG:3857's sphere (WGS 84's semi-major axis)
GEOJSON_DEFAULT_DECIMALS = 9  # PostGIS ST_AsGeoJSON maxdecimaldigits
WKT_DECIMALS = 15  # PostGIS ST_AsText / ST_AsEWKT maxdecimaldigits

GEOMETRY_TYPE_NAMES = {
    1: "Point",
    2: "LineString",
    3: "Polygon",
    4: "MultiPoint",
    5: "MultiLineString",
    6: "MultiPolygon",
    7: "GeometryCollection",
}

_NUMBER_RE = r"-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?"
_WKT_TYPES = "POINT|LINESTRING|POLYGON|MULTIPOINT|MULTILINESTRING|MULTIPOLYGON|GEOMETRYCOLLECTION"
_XMIN, _YMIN, _XMAX, _YMAX = WEBMERCATOR_EXTENT


def _geojson_type_fix(expr: str) -> str:
    """SQL rewriting the ``"type"`` values of GeoJSON text ``expr`` to their proper case."""
    for name in GEOMETRY_TYPE_NAMES.values():
        expr = f"""regexp_replace({expr}, '("type"\\s*:\\s*")({name})"', '\\1{name}"', 'gi')"""
    return expr


MACROS: list[str] = [
    # --- input -------------------------------------------------------------------------------
    f"""CREATE OR REPLACE TEMP MACRO pg__geometry_text(s) AS CASE
        WHEN s IS NULL THEN NULL::GEOMETRY
        WHEN regexp_matches(s, '^\\s*\\{{') THEN ST_GeomFromGeoJSON({_geojson_type_fix("s")})
        WHEN regexp_matches(s, '^\\s*([0-9A-Fa-f]{{2}})+\\s*$') THEN ST_GeomFromHEXEWKB(trim(s))
        ELSE ST_GeomFromText(trim(s))
    END""",
    """CREATE OR REPLACE TEMP MACRO pg_geometry(t) AS pg__geometry_text(CAST(t AS VARCHAR)),
        (t, srid) AS ST_SetCRS(pg__geometry_text(CAST(t AS VARCHAR)), 'EPSG:' || srid)""",
    # --- SRID --------------------------------------------------------------------------------
    """CREATE OR REPLACE TEMP MACRO pg_setsrid(g, n) AS ST_SetCRS(g, 'EPSG:' || n)""",
    """CREATE OR REPLACE TEMP MACRO pg__crs_srid(crs) AS CASE
        WHEN crs = 'OGC:CRS84' THEN 4326
        ELSE TRY_CAST(regexp_extract(crs, '^EPSG:([0-9]+)$', 1) AS INTEGER)
    END""",
    f"""CREATE OR REPLACE TEMP MACRO pg__srid(g) AS coalesce(pg__crs_srid(ST_CRS(g)), {DEFAULT_SRID})""",
    """CREATE OR REPLACE TEMP MACRO pg_srid(g) AS CASE WHEN g IS NULL THEN NULL::INTEGER ELSE pg__srid(g) END""",
    # --- transform ---------------------------------------------------------------------------
    # A macro argument is substituted wherever it is named, so nested calls would grow the
    # expression exponentially; list_transform([x], lambda …)[1] evaluates x once and names it.
    # covered by the rectangle exactly when the bounding box is inside it: four cheap extents, not
    # a GEOS predicate per row (3-4x faster for the_geom_webmercator of a million rows)
    f"""CREATE OR REPLACE TEMP MACRO pg__clip_mercator(g) AS list_transform([g], lambda pg__c: CASE
        WHEN ST_XMin(pg__c) >= {_XMIN} AND ST_XMax(pg__c) <= {_XMAX}
            AND ST_YMin(pg__c) >= {_YMIN} AND ST_YMax(pg__c) <= {_YMAX} THEN pg__c
        ELSE ST_Intersection(pg__c, ST_MakeEnvelope({_XMIN}, {_YMIN}, {_XMAX}, {_YMAX}))
    END)[1]""",
    f"""CREATE OR REPLACE TEMP MACRO pg__transform(g, src, n) AS list_transform([{{'g': g, 'src': src}}],
        lambda pg__t: CASE
            WHEN n = {WEBMERCATOR_SRID} THEN ST_Transform(pg__clip_mercator(CASE
                WHEN pg__t.src IN ('EPSG:{DEFAULT_SRID}', 'OGC:CRS84') THEN pg__t.g
                ELSE ST_Transform(pg__t.g, pg__t.src, 'EPSG:{DEFAULT_SRID}', true)
            END), 'EPSG:{DEFAULT_SRID}', 'EPSG:{WEBMERCATOR_SRID}', true)
            ELSE ST_Transform(pg__t.g, pg__t.src, 'EPSG:' || n, true)
        END)[1]""",
    f"""CREATE OR REPLACE TEMP MACRO pg_transform(g, n) AS ST_SetCRS(
        pg__transform(CAST(g AS GEOMETRY), coalesce(ST_CRS(g), 'EPSG:{DEFAULT_SRID}'), n), 'EPSG:' || n)""",
    # CARTO's the_geom_webmercator: pg_transform(g, 3857), bit for bit, but for the common cases
    # without the lambda (the generic path's price): a 2D point inside the mercator extent by
    # PROJ's own spherical formula (x = R·λ, y = R·asinh(tan φ), 5x faster), any other geometry
    # whose bounding box is inside it by one ST_Transform (1.5x). ``g`` is named several times:
    # call it with a column, as table_model.py does.
    f"""CREATE OR REPLACE TEMP MACRO pg_webmercator(g) AS CASE
        WHEN coalesce(ST_CRS(g), 'EPSG:{DEFAULT_SRID}') NOT IN ('EPSG:{DEFAULT_SRID}', 'OGC:CRS84')
            THEN pg_transform(g, {WEBMERCATOR_SRID})
        WHEN ST_GeometryType(g) = 'POINT' AND NOT ST_HasZ(g) AND NOT ST_HasM(g) AND NOT ST_IsEmpty(g)
            AND ST_X(g) >= {_XMIN} AND ST_X(g) <= {_XMAX} AND ST_Y(g) >= {_YMIN} AND ST_Y(g) <= {_YMAX}
            THEN ST_SetCRS(ST_Point({EARTH_RADIUS} * radians(ST_X(g)),
                {EARTH_RADIUS} * asinh(tan(radians(ST_Y(g))))), 'EPSG:{WEBMERCATOR_SRID}')
        WHEN ST_XMin(g) >= {_XMIN} AND ST_XMax(g) <= {_XMAX} AND ST_YMin(g) >= {_YMIN} AND ST_YMax(g) <= {_YMAX}
            THEN ST_SetCRS(ST_Transform(CAST(g AS GEOMETRY), 'EPSG:{DEFAULT_SRID}', 'EPSG:{WEBMERCATOR_SRID}', true),
                'EPSG:{WEBMERCATOR_SRID}')
        ELSE pg_transform(g, {WEBMERCATOR_SRID})
    END""",
    # --- numbers (PostGIS lwprint_double: at most dp decimals, shortest form, fixed below 1e15) ----
    """CREATE OR REPLACE TEMP MACRO pg__round_double(x, dp) AS CASE
        WHEN abs(x) < 9007199254740992.0 / pow(10, dp) THEN round(x, dp) ELSE x
    END""",
    """CREATE OR REPLACE TEMP MACRO pg__format_double(v, dp) AS CASE
        WHEN abs(v) <= 1e-12 THEN '0'
        WHEN abs(v) < 1e-4 THEN rtrim(rtrim(printf('%.' || dp || 'f', v), '0'), '.')
        ELSE regexp_replace(CAST(v AS VARCHAR), '\\.0$', '')
    END""",
    f"""CREATE OR REPLACE TEMP MACRO pg__format_all_numbers(s, dp) AS array_to_string(list_transform(list_zip(
        string_split_regex(s, '{_NUMBER_RE}'),
        list_transform(regexp_extract_all(s, '{_NUMBER_RE}'),
            lambda pg__n: pg__format_double(pg__round_double(CAST(pg__n AS DOUBLE), dp), dp))
    ), lambda pg__p: pg__p[1] || coalesce(pg__p[2], '')), '')""",
    # Fast path: when no number has more than dp decimals or an exponent, only drop DuckDB's '.0'.
    """CREATE OR REPLACE TEMP MACRO pg__format_numbers(s, dp) AS CASE
        WHEN regexp_matches(s, '[.][0-9]{' || (dp + 1) || ',}|[0-9][eE]|-0[.]0[^0-9]')
            THEN pg__format_all_numbers(s, dp)
        ELSE regexp_replace(s, '([0-9])[.]0([^0-9])', '\\1\\2', 'g')
    END""",
    # --- text output -------------------------------------------------------------------------
    # DuckDB: 'MULTIPOINT Z (1 2 3, 4 5 6)'; PostGIS ST_AsText: 'MULTIPOINT Z (1 2 3,4 5 6)',
    # ST_AsEWKT: 'MULTIPOINT(1 2 3,4 5 6)' (no Z marker, 'M' glued to the type: 'POINTM(1 2 3)').
    f"""CREATE OR REPLACE TEMP MACRO pg__wkt(g) AS
        pg__format_numbers(replace(ST_AsText(g), ', ', ','), {WKT_DECIMALS})""",
    f"""CREATE OR REPLACE TEMP MACRO pg_astext(g) AS regexp_replace(pg__wkt(g), '({_WKT_TYPES}) \\(', '\\1(', 'g')""",
    f"""CREATE OR REPLACE TEMP MACRO pg__ewkt_body(g) AS regexp_replace(regexp_replace(regexp_replace(pg__wkt(g),
        '({_WKT_TYPES}) ZM? ', '\\1 ', 'g'), '({_WKT_TYPES}) M ', '\\1M ', 'g'),
        '((?:{_WKT_TYPES})M?) \\(', '\\1(', 'g')""",
    """CREATE OR REPLACE TEMP MACRO pg_asewkt(g) AS 'SRID=' || pg__srid(g) || ';' || pg__ewkt_body(g)""",
    # --- GeoJSON -----------------------------------------------------------------------------
    f"""CREATE OR REPLACE TEMP MACRO pg__geojson_crs(json, srid) AS CASE
        WHEN srid = {DEFAULT_SRID} THEN json
        ELSE regexp_replace(json, '^(\\{{"type":"[A-Za-z]+",)',
            '\\1"crs":{{"type":"name","properties":{{"name":"EPSG:' || srid || '"}}}},')
    END""",
    """CREATE OR REPLACE TEMP MACRO pg__asgeojson(g, dp) AS
        pg__geojson_crs(pg__format_numbers(ST_AsGeoJSON(g), dp), pg__srid(g))""",
    f"""CREATE OR REPLACE TEMP MACRO pg_asgeojson(g) AS pg__asgeojson(g, {GEOJSON_DEFAULT_DECIMALS}),
        (g, dp) AS pg__asgeojson(g, dp)""",
]
"""DuckDB statements defining the ``pg_*`` macros (run once per connection, before or after ``USE lake``).

- ``pg_geometry(t[, srid])``: text → GEOMETRY. EWKT/WKT, hex WKB/EWKB, GeoJSON (type names in any
  case); the SRID of EWKT is dropped; with ``srid`` the result type carries ``EPSG:srid``.
  A GEOMETRY argument passes through (it is cast to its WKT text and back).
- ``pg_setsrid(g, n)``: ``g`` typed ``GEOMETRY('EPSG:n')`` (``n`` must be constant).
- ``pg_srid(g)``: the SRID per the module rule (4326 when the type has no CRS); NULL for NULL.
- ``pg_transform(g, n)``: reprojected from the type's CRS (else EPSG:4326) to EPSG:n with x = longitude; to 3857
  the lon/lat geometry is first clipped to CARTO's extent (latitude ±85.0511; a point outside
  becomes empty, like CARTO's ``CDB_TransformToWebmercator``). ``n`` must be constant.
- ``pg_webmercator(g)``: ``pg_transform(g, 3857)``, the same bytes, faster for points and for
  geometries inside the extent (CARTO's ``the_geom_webmercator``, kept by ``table_model.py``).
- ``pg_astext(g)`` / ``pg_asewkt(g)``: PostGIS text (``POINT(1 2)``, ``MULTIPOINT(1 2,3 4)``;
  EWKT ``SRID=4326;POINT(1 2)``, Z dropped from the tag, ``POINTM(1 2 3)``). Numbers use DuckDB's
  shortest round-trip form (``1e-07`` where PostGIS prints ``0.0000001``).
- ``pg_asgeojson(g[, dp])``: GeoJSON with coordinates rounded to ``dp`` decimals (default 9),
  integral values without ``.0``; a non-4326 SRID adds PostGIS's short ``crs`` member.
"""


# --------------------------------------------------------------------------------------------
# Python helpers for rendering results
# --------------------------------------------------------------------------------------------

_CRS_RE = re.compile(r"EPSG:(\d+)", re.IGNORECASE)

_EWKB_Z = 0x80000000
_EWKB_M = 0x40000000
_EWKB_SRID = 0x20000000
_EWKB_FLAGS = _EWKB_Z | _EWKB_M | _EWKB_SRID


def srid_for(column_name: str, type_text: str | None) -> int:
    """The SRID of a result column: its type's CRS (``GEOMETRY('EPSG:3857')`` → 3857), else by name."""
    if type_text:
        match = _CRS_RE.search(type_text)
        if match:
            return int(match.group(1))
        if "CRS84" in type_text.upper():
            return DEFAULT_SRID
    if column_name.lower() == WEBMERCATOR_COLUMN:
        return WEBMERCATOR_SRID
    return DEFAULT_SRID


class _WkbError(ValueError):
    pass


class _Reader:
    """Walks one (E)WKB geometry and writes it back as PostGIS EWKB (same byte orders)."""

    def __init__(self, data: bytes):
        self.data = data
        self.pos = 0
        self.out = bytearray()

    def take(self, n: int) -> bytes:
        end = self.pos + n
        if end > len(self.data):
            raise _WkbError("truncated WKB")
        chunk = self.data[self.pos : end]
        self.pos = end
        return chunk

    def geometry(self, srid: int | None) -> None:
        order = self.take(1)
        if order not in (b"\x00", b"\x01"):
            raise _WkbError(f"bad WKB byte order {order[0]:#x}")
        fmt = "<I" if order == b"\x01" else ">I"
        (code,) = struct.unpack(fmt, self.take(4))
        base, has_z, has_m = _split_type(code)
        if code & _EWKB_SRID:
            self.take(4)  # an SRID already present is replaced
        ewkb = base | (_EWKB_Z if has_z else 0) | (_EWKB_M if has_m else 0)
        self.out += order
        if srid is not None:
            self.out += struct.pack(fmt, ewkb | _EWKB_SRID) + struct.pack(fmt, srid)
        else:
            self.out += struct.pack(fmt, ewkb)
        dims = 2 + has_z + has_m
        if base == 1:
            self.out += self.take(8 * dims)
        elif base == 2:
            self.points(fmt, dims)
        elif base == 3:
            rings = self.count(fmt)
            for _ in range(rings):
                self.points(fmt, dims)
        elif base in (4, 5, 6, 7):
            for _ in range(self.count(fmt)):
                self.geometry(None)
        else:
            raise _WkbError(f"unsupported WKB geometry type {code}")

    def count(self, fmt: str) -> int:
        raw = self.take(4)
        self.out += raw
        return int(struct.unpack(fmt, raw)[0])

    def points(self, fmt: str, dims: int) -> None:
        self.out += self.take(8 * dims * self.count(fmt))


def _split_type(code: int) -> tuple[int, bool, bool]:
    """(base type 1..7, has Z, has M) of an ISO or EWKB type code."""
    flags = code & _EWKB_FLAGS
    iso = code & ~_EWKB_FLAGS
    base, dim = iso % 1000, iso // 1000
    if dim > 3:
        raise _WkbError(f"unsupported WKB geometry type {code}")
    has_z = bool(flags & _EWKB_Z) or dim in (1, 3)
    has_m = bool(flags & _EWKB_M) or dim in (2, 3)
    return base, has_z, has_m


def hex_ewkb(wkb: bytes, srid: int) -> str:
    """PostGIS EWKB hex (upper case, as PostGIS prints a geometry) of ISO WKB ``wkb`` with ``srid``.

    The SRID flag and value go on the outermost geometry only; ISO Z/M type codes (1000/2000/3000)
    become the EWKB flags on every level; each level keeps its byte order. Raises ``ValueError``
    on malformed WKB.
    """
    reader = _Reader(bytes(wkb))
    reader.geometry(srid)
    if reader.pos != len(reader.data):
        raise _WkbError("trailing bytes after WKB geometry")
    return reader.out.hex().upper()


def wkb_type_name(wkb: bytes) -> str:
    """``Point``, ``LineString``, … of a WKB/EWKB value (``Geometry`` when it cannot tell)."""
    if len(wkb) < 5 or wkb[0] not in (0, 1):
        return "Geometry"
    (code,) = struct.unpack("<I" if wkb[0] == 1 else ">I", bytes(wkb[1:5]))
    try:
        base, _, _ = _split_type(code)
    except _WkbError:
        return "Geometry"
    return GEOMETRY_TYPE_NAMES.get(base, "Geometry")


def _round_number(value: Any, dp: int) -> Any:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return value
    if isinstance(value, float) and not math.isfinite(value):
        return value
    rounded = round(float(value), dp)
    if rounded.is_integer():
        return int(rounded)
    return rounded


def _round_coordinates(coords: Any, dp: int) -> Any:
    if isinstance(coords, list):
        return [_round_coordinates(item, dp) for item in coords]
    return _round_number(coords, dp)


def round_geojson(obj: Any, dp: int) -> Any:
    """A copy of GeoJSON ``obj`` (geometry, feature or collection) with coordinates rounded to ``dp``.

    Integral results become ints (``2`` rather than ``2.0``, as PostGIS prints them); ``bbox`` is
    rounded too; other members are left as they are.
    """
    if isinstance(obj, list):
        return [round_geojson(item, dp) for item in obj]
    if not isinstance(obj, dict):
        return obj
    result: dict[str, Any] = {}
    for key, value in obj.items():
        if key in ("coordinates", "bbox"):
            result[key] = _round_coordinates(value, dp)
        elif key in ("geometry", "geometries", "features"):
            result[key] = round_geojson(value, dp)
        else:
            result[key] = value
    return result
