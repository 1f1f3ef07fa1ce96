"""PostGIS-compatible geometry: the pg_* macros on real DuckDB spatial, EWKB and GeoJSON helpers."""

from __future__ import annotations

import json
import struct

import duckdb
import pytest

from entrepot.core.engine import extensions
from entrepot.core.sql import geometry as G

# --- macros --------------------------------------------------------------------------------------


def _connect(tmp_path, lake: str) -> duckdb.DuckDBPyConnection:
    conn = extensions.connect()
    extensions.load(conn, "spatial")
    for statement in G.MACROS:
        conn.execute(statement)
    if lake == "ducklake":
        extensions.load(conn, "ducklake")
        conn.execute(f"ATTACH 'ducklake:{tmp_path}/meta.ducklake' AS lake (DATA_PATH '{tmp_path}/data')")
    else:
        conn.execute("ATTACH ':memory:' AS lake")
    conn.execute("USE lake")
    return conn


@pytest.fixture(scope="module")
def conn(tmp_path_factory):
    connection = _connect(tmp_path_factory.mktemp("lake"), "ducklake")
    yield connection
    connection.close()


def one(conn: duckdb.DuckDBPyConnection, sql: str):
    return conn.sql(sql).fetchone()[0]


@pytest.mark.parametrize("lake", ["ducklake", "memory"])
def test_macros_callable_unqualified_after_use_lake(tmp_path, lake):
    conn = _connect(tmp_path, lake)
    assert one(conn, "SELECT current_database()") == "lake"
    assert one(conn, "SELECT pg_asewkt(pg_setsrid(ST_Point(1, 2), 4326))") == "SRID=4326;POINT(1 2)"
    conn.execute("CREATE TABLE t AS SELECT pg_setsrid(ST_Point(1, 2), 4326) AS the_geom")
    assert one(conn, "SELECT pg_astext(the_geom) FROM t") == "POINT(1 2)"


def test_macros_are_per_connection(conn):
    # a cursor is a new connection: the sandbox has to run MACROS on it too
    cursor = conn.cursor()
    with pytest.raises(duckdb.CatalogException):
        cursor.sql("SELECT pg_srid(ST_Point(1, 2))").fetchall()
    for statement in G.MACROS:
        cursor.execute(statement)
    assert one(cursor, "SELECT pg_srid(ST_Point(1, 2))") == 4326


def test_macros_can_be_run_twice(conn):
    for statement in G.MACROS:
        conn.execute(statement)
    assert one(conn, "SELECT pg_srid(pg_setsrid(ST_Point(1, 2), 3857))") == 3857


def test_carto_copyto_query_byte_exact(conn):
    got = conn.sql(
        "SELECT i AS cartodb_id, pg_asewkt(pg_setsrid(ST_Point(i, i), 4326)) FROM generate_series(1,10) AS t(i)"
    ).fetchall()
    assert got == [(i, f"SRID=4326;POINT({i} {i})") for i in range(1, 11)]


@pytest.mark.parametrize(
    ("text", "wkt"),
    [
        ("SRID=4326;POINT(-126 54)", "POINT(-126 54)"),
        ("srid=3857;point(1 2)", "POINT(1 2)"),
        (" POINT (1.5 2.25) ", "POINT(1.5 2.25)"),
        ("MULTIPOINT((1 2),(3 4))", "MULTIPOINT(1 2,3 4)"),
        ("0101000020E6100000000000000000F03F0000000000000040", "POINT(1 2)"),
        ("0101000000000000000000f03f0000000000000040", "POINT(1 2)"),
        ('{"type": "point", "coordinates": [1, 2]}', "POINT(1 2)"),
        ('{"type":"LINESTRING","coordinates":[[0,0],[1,1]]}', "LINESTRING(0 0,1 1)"),
        (
            '{"type": "MultiPolygon", "coordinates": [[[[0,0],[1,0],[1,1],[0,0]]]]}',
            "MULTIPOLYGON(((0 0,1 0,1 1,0 0)))",
        ),
        (
            '{"type":"geometrycollection","geometries":[{"type":"multipoint","coordinates":[[1,2]]}]}',
            "GEOMETRYCOLLECTION(MULTIPOINT(1 2))",
        ),
    ],
)
def test_pg_geometry_inputs(conn, text, wkt):
    assert one(conn, f"SELECT pg_astext(pg_geometry('{text}'))") == wkt


def test_pg_geometry_null_column_and_geometry_argument(conn):
    got = conn.sql(
        "SELECT pg_astext(pg_geometry(t)) FROM (VALUES ('POINT(1 2)'), (NULL), ('SRID=4326;POINT(3 4)')) v(t)"
    ).fetchall()
    assert got == [("POINT(1 2)",), (None,), ("POINT(3 4)",)]
    assert one(conn, "SELECT pg_astext(pg_geometry(ST_Point(1, 2)))") == "POINT(1 2)"


def test_pg_geometry_with_srid(conn):
    assert one(conn, "SELECT pg_asewkt(pg_geometry('POINT(1 2)', 3857))") == "SRID=3857;POINT(1 2)"
    assert one(conn, "SELECT typeof(pg_geometry('POINT(1 2)', 3857))") == "GEOMETRY('EPSG:3857')"
    # EWKT's own SRID is dropped by the one-argument form (the CRS must be a constant)
    assert one(conn, "SELECT pg_srid(pg_geometry('SRID=3857;POINT(1 2)'))") == 4326


def test_pg_geometry_bad_text(conn):
    with pytest.raises(duckdb.InvalidInputException):
        conn.sql("SELECT pg_geometry('garbage')").fetchall()


def test_pg_setsrid_and_pg_srid(conn):
    assert one(conn, "SELECT ST_CRS(pg_setsrid(ST_Point(1, 2), 3857))") == "EPSG:3857"
    assert one(conn, "SELECT pg_srid(pg_setsrid(ST_Point(1, 2), 32631))") == 32631
    assert one(conn, "SELECT pg_srid(ST_SetCRS(ST_Point(1, 2), 'OGC:CRS84'))") == 4326
    assert one(conn, "SELECT pg_srid(ST_Point(1, 2))") == 4326
    assert one(conn, "SELECT pg_srid(NULL)") is None
    assert one(conn, "SELECT pg_srid(pg_setsrid(ST_Point(1, 2), 2000 + 1857))") == 3857  # constant-folded


def test_pg_setsrid_needs_a_constant(conn):
    with pytest.raises(duckdb.BinderException, match="must be constant"):
        conn.sql("SELECT pg_setsrid(ST_Point(i, i), i) FROM range(1, 3) t(i)").fetchall()


def test_stored_columns_lose_their_crs(conn):
    conn.execute(
        "CREATE OR REPLACE TABLE crs_test AS SELECT pg_setsrid(ST_Point(1, 2), 3857) AS the_geom_webmercator"
    )
    assert one(conn, "SELECT typeof(the_geom_webmercator) FROM crs_test") == "GEOMETRY"
    assert one(conn, "SELECT pg_srid(the_geom_webmercator) FROM crs_test") == 4326  # see srid_for


def test_pg_transform(conn):
    merc = "SRID=3857;POINT(111319.49079327357 222684.20850554405)"
    assert one(conn, "SELECT pg_asewkt(pg_transform(ST_Point(1, 2), 3857))") == merc
    assert one(conn, "SELECT pg_asewkt(pg_transform(pg_setsrid(ST_Point(1, 2), 4326), 3857))") == merc
    assert one(conn, "SELECT pg_asewkt(pg_transform(pg_transform(ST_Point(1, 2), 3857), 4326))") == (
        "SRID=4326;POINT(1 2)"  # 15 decimals, like PostGIS, hide the round-trip noise
    )
    assert one(conn, "SELECT typeof(pg_transform(ST_Point(1, 2), 3857))") == "GEOMETRY('EPSG:3857')"


def test_pg_transform_clips_to_webmercator_extent(conn):
    line = one(conn, "SELECT pg_asewkt(pg_transform(pg_geometry('LINESTRING(0 0,0 89)'), 3857))")
    assert line == "SRID=3857;LINESTRING(0 0,0 20037471.205137063)"
    assert one(conn, "SELECT pg_asewkt(pg_transform(ST_Point(0, 89), 3857))") == "SRID=3857;POINT EMPTY"
    assert one(conn, "SELECT ST_Y(pg_transform(ST_Point(0, 85), 3857))") == pytest.approx(
        19971868.88, abs=0.01
    )


def test_pg_webmercator_is_pg_transform_to_3857_byte_for_byte(conn):
    """Each of pg_webmercator's paths (point formula, one ST_Transform, the generic clip) gives
    exactly pg_transform(g, 3857): the same WKB and the same type."""
    conn.execute(
        "CREATE OR REPLACE TEMP TABLE merc_cases AS SELECT CAST(g AS GEOMETRY) AS g FROM (VALUES "
        "(NULL), ('POINT EMPTY'), ('POINT Z (1 2 3)'), ('POINT M (1 2 3)'), ('POINT(0 89)'), ('POINT(-180 -85.0511)'), "
        "('POINT(180.5 10)'), ('LINESTRING(0 0,1 1)'), ('LINESTRING(0 0,0 89)'), ('POLYGON EMPTY'), "
        "('POLYGON((0 0,1 0,1 1,0 0))'), ('MULTIPOINT(1 2,3 4)'), ('LINESTRING Z (0 0 1,1 8 2)')) v(g) "
        "UNION ALL SELECT ST_Point(-190 + i * 0.0347, -89 + i * 0.0113)::GEOMETRY FROM range(15000) t(i)"
    )
    differing = "ST_AsWKB(pg_webmercator(g)) IS DISTINCT FROM ST_AsWKB(pg_transform(g, 3857))"
    assert one(conn, f"SELECT count(*) FILTER (WHERE {differing}) FROM merc_cases") == 0
    assert (
        one(conn, "SELECT count(*) FILTER (WHERE NOT ST_IsEmpty(pg_webmercator(g))) FROM merc_cases") > 10000
    )
    for typed in ("pg_setsrid(ST_Point(1, 2), 4326)", "pg_setsrid(ST_Point(500000, 4649776), 32633)"):
        got = one(conn, f"SELECT [pg_asewkt(pg_webmercator({typed})), typeof(pg_webmercator({typed}))]")
        assert got == one(
            conn, f"SELECT [pg_asewkt(pg_transform({typed}, 3857)), typeof(pg_transform({typed}, 3857))]"
        )


@pytest.mark.parametrize(
    ("wkt", "astext", "ewkt"),
    [
        ("POINT(1 2)", "POINT(1 2)", "POINT(1 2)"),
        ("MULTIPOINT(1 2,3 4)", "MULTIPOINT(1 2,3 4)", "MULTIPOINT(1 2,3 4)"),
        ("POLYGON((0 0,1 0,1 1,0 0))", "POLYGON((0 0,1 0,1 1,0 0))", "POLYGON((0 0,1 0,1 1,0 0))"),
        (
            "MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))",
            "MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))",
            "MULTIPOLYGON(((0 0,1 0,1 1,0 0)),((5 5,6 5,6 6,5 5)))",
        ),
        (
            "GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1))",
            "GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1))",
            "GEOMETRYCOLLECTION(POINT(1 2),LINESTRING(0 0,1 1))",
        ),
        ("POINT Z (1 2 3)", "POINT Z (1 2 3)", "POINT(1 2 3)"),
        ("POINT M (1 2 3)", "POINT M (1 2 3)", "POINTM(1 2 3)"),
        ("MULTIPOINT ZM (1 2 3 4)", "MULTIPOINT ZM (1 2 3 4)", "MULTIPOINT(1 2 3 4)"),
        ("POINT EMPTY", "POINT EMPTY", "POINT EMPTY"),
        ("POINT(-1.5 0.25)", "POINT(-1.5 0.25)", "POINT(-1.5 0.25)"),
        ("POINT(0.0000001 -0.000015)", "POINT(0.0000001 -0.000015)", "POINT(0.0000001 -0.000015)"),
        ("POINT(0.12345678901234567 1e-13)", "POINT(0.123456789012346 0)", "POINT(0.123456789012346 0)"),
    ],
)
def test_pg_astext_and_pg_asewkt(conn, wkt, astext, ewkt):
    assert one(conn, f"SELECT pg_astext(pg_geometry('{wkt}'))") == astext
    assert one(conn, f"SELECT pg_asewkt(pg_geometry('{wkt}', 4326))") == f"SRID=4326;{ewkt}"


def test_text_outputs_of_null(conn):
    assert conn.sql("SELECT pg_astext(NULL), pg_asewkt(NULL), pg_asgeojson(NULL)").fetchone() == (None,) * 3


def test_pg_asgeojson(conn):
    assert one(conn, "SELECT pg_asgeojson(ST_Point(1.123456789123, 2))") == (
        '{"type":"Point","coordinates":[1.123456789,2]}'
    )
    assert one(conn, "SELECT pg_asgeojson(ST_Point(1.123456789123, 2), 6)") == (
        '{"type":"Point","coordinates":[1.123457,2]}'
    )
    collection = one(
        conn,
        "SELECT pg_asgeojson(pg_geometry('GEOMETRYCOLLECTION(POINT(-1.55 2e-7),LINESTRING(0 0,1 1.26))'), 1)",
    )
    assert json.loads(collection) == {
        "type": "GeometryCollection",
        "geometries": [
            {"type": "Point", "coordinates": [-1.6, 0]},
            {"type": "LineString", "coordinates": [[0, 0], [1, 1.3]]},
        ],
    }
    assert one(conn, "SELECT pg_asgeojson(pg_geometry('POINT EMPTY'))") == '{"type":"Point","coordinates":[]}'


def test_pg_asgeojson_non_default_srid_names_its_crs(conn):
    assert one(conn, "SELECT pg_asgeojson(pg_transform(ST_Point(1, 2), 3857), 2)") == (
        '{"type":"Point","crs":{"type":"name","properties":{"name":"EPSG:3857"}},'
        '"coordinates":[111319.49,222684.21]}'
    )


def test_pg_asgeojson_per_row_precision_column(conn):
    got = conn.sql(
        "SELECT pg_asgeojson(pg_geometry(t), 3) FROM (VALUES ('POINT(1.23456 2)'), (NULL), "
        "('LINESTRING(1 1,2 2.5555)')) v(t)"
    ).fetchall()
    assert got == [
        ('{"type":"Point","coordinates":[1.235,2]}',),
        (None,),
        ('{"type":"LineString","coordinates":[[1,1],[2,2.556]]}',),
    ]


# --- Python helpers ------------------------------------------------------------------------------

POINT_4326 = "0101000020E6100000000000000000F03F0000000000000040"
POINT_3857 = "0101000020110F0000000000000000F03F0000000000000040"
ONE = "000000000000F03F"
ZERO = "0000000000000000"
LINE_4326 = "0102000020E610000002000000" + ZERO + ZERO + ONE + ONE
POLYGON_3857 = "0103000020110F00000100000004000000" + ZERO + ZERO + ONE + ZERO + ONE + ONE + ZERO + ZERO


def iso_wkb(conn, wkt: str) -> bytes:
    return bytes.fromhex(one(conn, f"SELECT ST_AsHEXWKB(ST_GeomFromText('{wkt}'))"))


@pytest.mark.parametrize(
    ("wkt", "srid", "expected"),
    [
        ("POINT(1 2)", 4326, POINT_4326),
        ("POINT(1 2)", 3857, POINT_3857),
        ("LINESTRING(0 0,1 1)", 4326, LINE_4326),
        ("POLYGON((0 0,1 0,1 1,0 0))", 3857, POLYGON_3857),
        ("POINT Z (1 2 3)", 4326, "01010000A0E6100000" + ONE + "0000000000000040" + "0000000000000840"),
        ("POINT M (1 2 3)", 4326, "0101000060E6100000" + ONE + "0000000000000040" + "0000000000000840"),
        (
            "POINT ZM (1 2 3 4)",
            4326,
            "01010000E0E6100000" + ONE + "0000000000000040" + "0000000000000840" + "0000000000001040",
        ),
        # the SRID goes on the outer geometry only; children keep their Z flag
        (
            "MULTIPOINT Z (1 2 3)",
            4326,
            "01040000A0E610000001000000" + "0101000080" + ONE + "0000000000000040" + "0000000000000840",
        ),
        ("MULTIPOINT(1 2)", 4326, "0104000020E610000001000000" + "0101000000" + ONE + "0000000000000040"),
        ("POINT EMPTY", 4326, "0101000020E6100000000000000000F87F000000000000F87F"),
    ],
)
def test_hex_ewkb(conn, wkt, srid, expected):
    assert G.hex_ewkb(iso_wkb(conn, wkt), srid) == expected
    # DuckDB reads PostGIS's EWKB back to the same geometry
    assert one(conn, f"SELECT ST_AsText(ST_GeomFromHEXEWKB('{expected}'))") == one(
        conn, f"SELECT ST_AsText(ST_GeomFromText('{wkt}'))"
    )


def test_hex_ewkb_big_endian_and_existing_srid():
    big = bytes.fromhex("00000000013FF00000000000004000000000000000")
    assert G.hex_ewkb(big, 4326) == "0020000001000010E63FF00000000000004000000000000000"
    # an EWKB input with an SRID gets the new one
    assert G.hex_ewkb(bytes.fromhex(POINT_3857), 4326) == POINT_4326
    # mixed byte orders inside a collection are kept per level
    mixed = bytes.fromhex("010400000001000000" + "00000000013FF00000000000004000000000000000")
    assert (
        G.hex_ewkb(mixed, 4326) == "0104000020E610000001000000" + "00000000013FF00000000000004000000000000000"
    )


@pytest.mark.parametrize(
    "bad", [b"", b"\x01\x01\x00\x00", b"\x02\x01\x00\x00\x00", bytes.fromhex(POINT_4326) + b"\x00"]
)
def test_hex_ewkb_rejects_malformed(bad):
    with pytest.raises(ValueError):
        G.hex_ewkb(bad, 4326)


@pytest.mark.parametrize(
    ("wkt", "name"),
    [
        ("POINT(1 2)", "Point"),
        ("LINESTRING(0 0,1 1)", "LineString"),
        ("POLYGON((0 0,1 0,1 1,0 0))", "Polygon"),
        ("MULTIPOINT(1 2)", "MultiPoint"),
        ("MULTILINESTRING((0 0,1 1))", "MultiLineString"),
        ("MULTIPOLYGON(((0 0,1 0,1 1,0 0)))", "MultiPolygon"),
        ("GEOMETRYCOLLECTION(POINT(1 2))", "GeometryCollection"),
        ("POINT Z (1 2 3)", "Point"),
        ("MULTIPOLYGON ZM (((0 0 0 0,1 0 0 0,1 1 0 0,0 0 0 0)))", "MultiPolygon"),
    ],
)
def test_wkb_type_name(conn, wkt, name):
    assert G.wkb_type_name(iso_wkb(conn, wkt)) == name
    assert G.wkb_type_name(bytes.fromhex(G.hex_ewkb(iso_wkb(conn, wkt), 4326))) == name


def test_wkb_type_name_unknown():
    assert G.wkb_type_name(b"") == "Geometry"
    assert G.wkb_type_name(b"\x01" + struct.pack("<I", 17)) == "Geometry"
    assert G.wkb_type_name(b"\x00" + struct.pack(">I", 3)) == "Polygon"


@pytest.mark.parametrize(
    ("column", "type_text", "srid"),
    [
        ("the_geom", "GEOMETRY", 4326),
        ("the_geom_webmercator", "GEOMETRY", 3857),
        ("THE_GEOM_WEBMERCATOR", None, 3857),
        ("anything", None, 4326),
        ("the_geom", "GEOMETRY('EPSG:3857')", 3857),
        ("the_geom_webmercator", "GEOMETRY('EPSG:4326')", 4326),
        ("g", "GEOMETRY('OGC:CRS84')", 4326),
        ("g", "GEOMETRY('EPSG:32631')", 32631),
    ],
)
def test_srid_for(column, type_text, srid):
    assert G.srid_for(column, type_text) == srid


def test_srid_for_matches_duckdb_type_text(conn):
    type_text = one(conn, "SELECT typeof(pg_transform(ST_Point(1, 2), 3857))")
    assert G.srid_for("g", type_text) == 3857


def test_round_geojson():
    feature = {
        "type": "Feature",
        "geometry": {"type": "LineString", "coordinates": [[1.23456789, 2.0], [3.0000001, -4.5555555]]},
        "properties": {"value": 1.23456789},
        "bbox": [1.23456789, -4.5555555, 3.0000001, 2.0],
    }
    rounded = G.round_geojson(feature, 3)
    assert rounded["geometry"]["coordinates"] == [[1.235, 2], [3, -4.556]]
    assert rounded["bbox"] == [1.235, -4.556, 3, 2]
    assert rounded["properties"] == {"value": 1.23456789}  # properties untouched
    assert feature["geometry"]["coordinates"][0][0] == 1.23456789  # input untouched
    assert json.dumps(G.round_geojson({"type": "Point", "coordinates": [1.0, 2.5]}, 6)) == (
        '{"type": "Point", "coordinates": [1, 2.5]}'
    )
    collection = {
        "type": "FeatureCollection",
        "features": [
            {
                "type": "Feature",
                "properties": {},
                "geometry": {
                    "type": "GeometryCollection",
                    "geometries": [{"type": "Point", "coordinates": [0.12345, 1]}],
                },
            }
        ],
    }
    got = G.round_geojson(collection, 2)
    assert got["features"][0]["geometry"]["geometries"][0]["coordinates"] == [0.12, 1]
    assert G.round_geojson(None, 2) is None
