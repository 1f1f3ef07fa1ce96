"""Vector tiles by DuckDB spatial: tile checks and bounds, layer SQL decoded with mapbox_vector_tile, merging."""

from __future__ import annotations

import math
from typing import Any

import duckdb
import mapbox_vector_tile
import pytest
from shapely.geometry import shape

from entrepot.core import errors as E
from entrepot.core.engine import extensions
from entrepot.core.engine.statements import quote_ident
from entrepot.core.maps import mvt

HOSTILE = "we\"ird'; DROP TABLE pts; --"
HOSTILE_LAYER = "la'yer\"; SELECT 1; --"


def _merc(lon: float, lat: float) -> str:
    return f"ST_Transform(ST_Point({lon}, {lat}), 'EPSG:4326', 'EPSG:3857', true)"


@pytest.fixture(scope="module")
def conn() -> duckdb.DuckDBPyConnection:
    conn = extensions.connect()
    extensions.load(conn, "spatial")
    conn.execute(f"""CREATE TABLE pts (
        cartodb_id INTEGER, name VARCHAR, n DOUBLE, flag BOOLEAN, small SMALLINT, big HUGEINT,
        ts TIMESTAMP, day DATE, price DECIMAL(10, 2), uid UUID, {quote_ident(HOSTILE)} VARCHAR,
        the_geom_webmercator GEOMETRY('EPSG:3857'))""")
    conn.execute(f"""INSERT INTO pts VALUES
        (1, 'madrid', 1.5, true, 7, 12345678901234567890, TIMESTAMP '2024-05-01 12:30:00', DATE '2024-05-01',
         12.34, '00000000-0000-0000-0000-000000000001', 'x', {_merc(-3.7038, 40.4168)}),
        (2, 'paris', NULL, false, NULL, NULL, NULL, NULL, NULL, NULL, NULL, {_merc(2.3522, 48.8566)}),
        (3, 'sydney', 3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, {_merc(151.2093, -33.8688)}),
        (4, 'nowhere', 4, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
        (5, 'empty', 5, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 'POINT EMPTY')""")
    # untyped geometry: lines, polygons, an invalid bowtie, a collection, and an empty polygon
    conn.execute("CREATE TABLE shapes (cartodb_id BIGINT, kind VARCHAR, the_geom_webmercator GEOMETRY)")
    conn.execute("""INSERT INTO shapes VALUES
        (10, 'line', ST_MakeLine([ST_Point(-1e7, 1e6), ST_Point(5e6, 8e6)])),
        (11, 'square', ST_Buffer(ST_Point(-5e6, 5e6), 2e6, 8)),
        (12, 'bowtie', 'POLYGON((-9e6 1e6, -7e6 3e6, -9e6 3e6, -7e6 1e6, -9e6 1e6))'),
        (13, 'collection', 'GEOMETRYCOLLECTION(POINT(-3e6 3e6), LINESTRING(-3e6 3e6, -2e6 2e6))'),
        (14, 'nothing', 'POLYGON EMPTY')""")
    return conn


def _tile(
    conn: duckdb.DuckDBPyConnection, table: str, z: int, x: int, y: int, layer: str = "layer0", **kwargs: Any
) -> bytes:
    columns = kwargs.pop("columns", None)
    if columns is None:
        columns = [
            c for c in mvt.source_columns(conn, f"SELECT * FROM {table}") if c[0] != "the_geom_webmercator"
        ]
    row = conn.execute(
        mvt.layer_sql(f"SELECT * FROM {table}", layer, z, x, y, columns=columns, **kwargs)
    ).fetchall()
    assert len(row) == 1
    data = row[0][0]
    assert isinstance(data, bytes)
    return data


def _decode(data: bytes) -> dict[str, Any]:
    decoded: dict[str, Any] = mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})
    return decoded


def _coords(geometry: Any) -> list[tuple[float, float]]:
    """Every (x, y) pair of a GeoJSON coordinates tree."""
    if isinstance(geometry[0], (int, float)):
        return [(geometry[0], geometry[1])]
    return [pair for part in geometry for pair in _coords(part)]


def _by_id(data: bytes, layer: str = "layer0") -> dict[int, dict[str, Any]]:
    return {f["id"]: f for f in _decode(data)[layer]["features"]}


# --- tiles ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("z, x, y", [(-1, 0, 0), (31, 0, 0), (0, 1, 0), (1, 2, 0), (1, 0, -1), (3, 0, 8)])
def test_out_of_range_tiles_are_invalid_input(z: int, x: int, y: int) -> None:
    with pytest.raises(E.InvalidInput) as info:
        mvt.check_tile(z, x, y)
    assert info.value.code == "maps.tile.outOfRange"
    with pytest.raises(E.InvalidInput):
        mvt.layer_sql("SELECT 1", "l", z, x, y, columns=[])


def test_the_valid_range_is_accepted_and_named() -> None:
    mvt.check_tile(0, 0, 0)
    mvt.check_tile(mvt.MAX_ZOOM, 2**mvt.MAX_ZOOM - 1, 2**mvt.MAX_ZOOM - 1)
    with pytest.raises(E.InvalidInput, match="0 to 3"):
        mvt.check_tile(2, 4, 0)


@pytest.mark.parametrize(
    "z, x, y", [(0, 0, 0), (1, 0, 0), (2, 3, 1), (7, 60, 45), (18, 130000, 90000), (30, 5, 2**30 - 1)]
)
def test_tile_bounds_equal_st_tileenvelope(conn: duckdb.DuckDBPyConnection, z: int, x: int, y: int) -> None:
    row = conn.execute(
        "SELECT ST_XMin(e), ST_YMin(e), ST_XMax(e), ST_YMax(e) FROM (SELECT ST_TileEnvelope(?, ?, ?) AS e)",
        [z, x, y],
    ).fetchone()
    assert row is not None
    assert mvt.tile_bounds(z, x, y) == pytest.approx(row, rel=0, abs=1e-6)


def test_tile_bounds_are_xyz_north_up() -> None:
    xmin, ymin, xmax, ymax = mvt.tile_bounds(1, 0, 0)
    assert (xmin, ymin, xmax, ymax) == (-mvt.HALF_WORLD, 0.0, 0.0, mvt.HALF_WORLD)


# --- layers --------------------------------------------------------------------------------------


def test_world_tile_has_every_point_but_null_and_empty_geometries(conn: duckdb.DuckDBPyConnection) -> None:
    decoded = _decode(_tile(conn, "pts", 0, 0, 0, columns=[("name", "VARCHAR")]))
    assert list(decoded) == ["layer0"]
    assert decoded["layer0"]["extent"] == mvt.EXTENT
    features = decoded["layer0"]["features"]
    assert sorted(f["id"] for f in features) == [1, 2, 3]
    assert {f["properties"]["name"] for f in features} == {"madrid", "paris", "sydney"}


@pytest.mark.parametrize(
    "z, x, y, buffer, ids",
    [
        (1, 0, 0, 0, {1}),
        (1, 0, 0, mvt.BUFFER, {1, 2}),  # Paris (2.35°E) is 53 pixels east of the tile: in its buffer
        (1, 1, 0, mvt.BUFFER, {2}),
        (1, 1, 1, mvt.BUFFER, {3}),
        (5, 15, 12, mvt.BUFFER, {1}),
    ],
)
def test_features_outside_the_tile_are_absent(
    conn: duckdb.DuckDBPyConnection, z: int, x: int, y: int, buffer: int, ids: set[int]
) -> None:
    assert set(_by_id(_tile(conn, "pts", z, x, y, buffer=buffer))) == ids


def test_point_lands_on_its_pixel(conn: duckdb.DuckDBPyConnection) -> None:
    z, x, y = 5, 15, 12
    px, py = conn.execute(f"SELECT ST_X(g), ST_Y(g) FROM (SELECT {_merc(-3.7038, 40.4168)} AS g)").fetchall()[
        0
    ]
    xmin, ymin, xmax, ymax = mvt.tile_bounds(z, x, y)
    expected = ((px - xmin) / (xmax - xmin) * mvt.EXTENT, (ymax - py) / (ymax - ymin) * mvt.EXTENT)
    (feature,) = _decode(_tile(conn, "pts", z, x, y))["layer0"]["features"]
    assert feature["geometry"]["type"] == "Point"
    got = feature["geometry"]["coordinates"]
    assert abs(got[0] - expected[0]) <= 0.5 and abs(got[1] - expected[1]) <= 0.5
    assert 0 < got[0] < mvt.EXTENT and 0 < got[1] < mvt.EXTENT


def test_points_in_the_buffer_are_kept_and_beyond_it_dropped(conn: duckdb.DuckDBPyConnection) -> None:
    xmin, _, xmax, _ = mvt.tile_bounds(1, 0, 0)
    pixel = (xmax - xmin) / mvt.EXTENT
    conn.execute("CREATE OR REPLACE TABLE edge (cartodb_id INTEGER, the_geom_webmercator GEOMETRY)")
    conn.execute(
        "INSERT INTO edge VALUES (1, ST_Point(?, 1e7)), (2, ST_Point(?, 1e7)), (3, ST_Point(?, 1e7))",
        [xmax + 10 * pixel, xmax + 100 * pixel, xmin - 20 * pixel],
    )
    features = _by_id(_tile(conn, "edge", 1, 0, 0, columns=[]))
    assert set(features) == {1, 3}
    assert features[1]["geometry"]["coordinates"][0] == mvt.EXTENT + 10
    assert features[3]["geometry"]["coordinates"][0] == -20
    assert _tile(conn, "edge", 1, 0, 0, columns=[], buffer=0) == b""


def test_attributes_are_exactly_the_columns_asked_for(conn: duckdb.DuckDBPyConnection) -> None:
    features = _by_id(_tile(conn, "pts", 0, 0, 0, columns=[("name", "VARCHAR"), ("n", "DOUBLE")]))
    assert features[1]["properties"] == {"name": "madrid", "n": 1.5}
    assert features[2]["properties"] == {"name": "paris"}  # a NULL value is left out
    assert all(f["properties"] == {} for f in _by_id(_tile(conn, "pts", 0, 0, 0, columns=[])).values())


def test_feature_ids_come_from_the_id_column(conn: duckdb.DuckDBPyConnection) -> None:
    with_id = _by_id(_tile(conn, "pts", 0, 0, 0, columns=[("cartodb_id", "INTEGER")]))
    assert {i: f["properties"] for i, f in with_id.items()} == {
        1: {"cartodb_id": 1},
        2: {"cartodb_id": 2},
        3: {"cartodb_id": 3},
    }
    # not among the columns: only the id
    assert all(f["properties"] == {} for f in _by_id(_tile(conn, "pts", 0, 0, 0, columns=[])).values())
    # no id column: the decoder reports the absent id as 0
    features = _decode(_tile(conn, "pts", 0, 0, 0, columns=[], id_column=None))["layer0"]["features"]
    assert len(features) == 3 and {f["id"] for f in features} == {0}


def test_other_types_become_text_or_numbers(conn: duckdb.DuckDBPyConnection) -> None:
    features = _by_id(_tile(conn, "pts", 0, 0, 0))
    props = features[1]["properties"]
    assert props["ts"] == "2024-05-01 12:30:00"
    assert props["day"] == "2024-05-01"
    assert props["price"] == pytest.approx(12.34)
    assert props["small"] == 7
    assert props["big"] == pytest.approx(12345678901234567890.0)
    assert props["uid"] == "00000000-0000-0000-0000-000000000001"
    assert props["flag"] is True and props["n"] == 1.5 and props["cartodb_id"] == 1


def test_hostile_column_and_layer_names_are_quoted(conn: duckdb.DuckDBPyConnection) -> None:
    data = _tile(conn, "pts", 0, 0, 0, layer=HOSTILE_LAYER, columns=[(HOSTILE, "VARCHAR")])
    decoded = _decode(data)
    assert list(decoded) == [HOSTILE_LAYER]
    assert _by_id(data, HOSTILE_LAYER)[1]["properties"] == {HOSTILE: "x"}
    assert conn.execute("SELECT count(*) FROM pts").fetchone() == (5,)


def test_internal_names_do_not_clash_with_columns(conn: duckdb.DuckDBPyConnection) -> None:
    source = "SELECT the_geom_webmercator, name AS mvt_geom, cartodb_id AS mvt_id, cartodb_id FROM pts"
    columns = [("mvt_geom", "VARCHAR"), ("mvt_id", "INTEGER")]
    data = conn.execute(mvt.layer_sql(source, "l", 0, 0, 0, columns=columns)).fetchall()[0][0]
    assert _by_id(data, "l")[2]["properties"] == {"mvt_geom": "paris", "mvt_id": 2}


def test_empty_tile_is_empty_bytes(conn: duckdb.DuckDBPyConnection) -> None:
    assert _tile(conn, "pts", 10, 0, 0) == b""
    sql = mvt.layer_sql("SELECT * FROM pts WHERE false", "l", 0, 0, 0, columns=[("name", "VARCHAR")])
    assert conn.execute(sql).fetchall() == [(b"",)]


def test_lines_and_polygons_are_clipped_into_the_buffer(conn: duckdb.DuckDBPyConnection) -> None:
    for z, x, y in [(0, 0, 0), (1, 0, 0), (2, 1, 1), (3, 2, 3)]:
        data = _tile(conn, "shapes", z, x, y)
        features = _decode(data)["layer0"]["features"] if data else []
        for feature in features:
            for px, py in _coords(feature["geometry"]["coordinates"]):
                assert (
                    -mvt.BUFFER <= px <= mvt.EXTENT + mvt.BUFFER
                    and -mvt.BUFFER <= py <= mvt.EXTENT + mvt.BUFFER
                )
            assert shape(feature["geometry"]).is_valid
    features = _by_id(_tile(conn, "shapes", 1, 0, 0))
    assert {f["properties"]["kind"] for f in features.values()} == {"line", "square", "bowtie", "collection"}
    assert features[10]["geometry"]["type"] == "LineString"
    assert features[11]["geometry"]["type"] == "Polygon"
    assert features[12]["geometry"]["type"] == "MultiPolygon"  # the bowtie, made valid
    assert features[13]["geometry"]["type"] in ("LineString", "MultiLineString")  # the collection's line


def test_simplification_makes_polygon_tiles_smaller(conn: duckdb.DuckDBPyConnection) -> None:
    conn.execute("""CREATE OR REPLACE TABLE blobs AS SELECT i AS cartodb_id,
        ST_Transform(ST_Buffer(ST_Point(-10 + (i % 200) * 0.1, 40 + (i // 200) * 0.1), 0.03, 32),
            'EPSG:4326', 'EPSG:3857', true) AS the_geom_webmercator
        FROM range(20000) AS t(i)""")
    simplified = _tile(conn, "blobs", 4, 7, 5, columns=[])
    full = _tile(conn, "blobs", 4, 7, 5, columns=[], simplify=False)
    assert len(simplified) < 0.6 * len(full)
    features = _decode(simplified)["layer0"]["features"]
    assert len(features) == len(_decode(full)["layer0"]["features"]) > 5000
    assert all(shape(f["geometry"]).is_valid for f in features)


# --- merge ---------------------------------------------------------------------------------------


def test_merged_tiles_decode_to_every_layer(conn: duckdb.DuckDBPyConnection) -> None:
    points = _tile(conn, "pts", 0, 0, 0, layer="points")
    shapes = _tile(conn, "shapes", 0, 0, 0, layer="shapes")
    decoded = _decode(mvt.merge([points, b"", shapes]))
    assert list(decoded) == ["points", "shapes"]
    assert len(decoded["points"]["features"]) == 3
    assert len(decoded["shapes"]["features"]) == 4
    assert mvt.merge([]) == b""


def test_tolerance_is_half_a_pixel() -> None:
    xmin, _, xmax, _ = mvt.tile_bounds(3, 0, 0)
    assert math.isclose(mvt.tolerance(3), (xmax - xmin) / mvt.EXTENT / 2)
