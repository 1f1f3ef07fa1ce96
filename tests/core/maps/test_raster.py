"""Mapnik rendering of PNG tiles and UTFGrids from WKB features (real Mapnik, Pillow to decode)."""

from __future__ import annotations

import io
import math
import struct
from typing import Any

import pytest
from PIL import Image

from entrepot.core import errors as E
from entrepot.core.maps import raster as R
from entrepot.core.maps.cartocss import zoom_scale_denominator

HALF = 20037508.342789244  # half the web-mercator world


def tile_bounds(z: int, x: int, y: int) -> tuple[float, float, float, float]:
    size = 2 * HALF / 2**z
    return (-HALF + x * size, HALF - (y + 1) * size, -HALF + (x + 1) * size, HALF - y * size)


BOUNDS = (-1000.0, -1000.0, 1000.0, 1000.0)  # 256 px: 7.8125 m a pixel


def pixel(
    x: float, y: float, bounds: tuple[float, float, float, float] = BOUNDS, size: int = 256
) -> tuple[int, int]:
    minx, miny, maxx, maxy = bounds
    return int((x - minx) / (maxx - minx) * size), int((maxy - y) / (maxy - miny) * size)


def wkb_point(x: float, y: float) -> bytes:
    return struct.pack("<BIdd", 1, 1, x, y)


def wkb_line(coords: list[tuple[float, float]]) -> bytes:
    return struct.pack("<BII", 1, 2, len(coords)) + b"".join(struct.pack("<dd", *c) for c in coords)


def wkb_box(minx: float, miny: float, maxx: float, maxy: float) -> bytes:
    ring = [(minx, miny), (maxx, miny), (maxx, maxy), (minx, maxy), (minx, miny)]
    return struct.pack("<BIII", 1, 3, 1, len(ring)) + b"".join(struct.pack("<dd", *c) for c in ring)


def point(x: float, y: float, **props: Any) -> tuple[bytes, dict[str, Any]]:
    return wkb_point(x, y), props


def png(
    layers: list[R.RasterLayer], bounds: tuple[float, float, float, float] = BOUNDS, **kw: Any
) -> Image.Image:
    image = Image.open(io.BytesIO(R.render_png(layers, bounds, **kw)))
    assert image.format == "PNG"
    return image.convert("RGBA")


def at(image: Image.Image, xy: tuple[int, int]) -> tuple[int, int, int, int]:
    value = image.getpixel(xy)
    assert isinstance(value, tuple) and len(value) == 4
    return (int(value[0]), int(value[1]), int(value[2]), int(value[3]))


def alpha_range(image: Image.Image) -> tuple[int, int]:
    low, high = image.getchannel("A").getextrema()
    assert isinstance(low, int) and isinstance(high, int)
    return low, high


def redish(rgba: tuple[int, ...]) -> bool:
    return rgba[0] > 200 and rgba[1] < 60 and rgba[2] < 60 and rgba[3] > 200


def test_red_marker_at_its_position() -> None:
    layer = R.RasterLayer("pts", "#layer { marker-fill: #f00; marker-width: 12; marker-line-width: 0; }",
                          [point(500, 500)])  # fmt: skip
    image = png([layer])
    assert image.size == (256, 256)
    px, py = pixel(500, 500)
    assert redish(at(image, (px, py)))
    assert redish(at(image, (px + 3, py - 3)))
    for corner in ((0, 0), (255, 0), (0, 255), (255, 255), (128, 128)):
        assert at(image, corner)[3] == 0


def test_points_from_duckdb_wkb() -> None:
    from entrepot.core.engine import extensions

    c = extensions.connect()
    extensions.load(c, "spatial")
    row = c.execute(
        "SELECT ST_AsWKB(ST_Transform(ST_Point(2.35, 48.85), 'EPSG:4326', 'EPSG:3857', true))"
    ).fetchone()
    assert row is not None
    wkb = bytes(row[0])
    _, _, x, y = struct.unpack("<BIdd", wkb)
    bounds = (x - 5000, y - 5000, x + 5000, y + 5000)
    image = png(
        [R.RasterLayer("p", "#layer { marker-fill: red; marker-line-width: 0; }", [(wkb, {})])], bounds
    )
    assert redish(at(image, (128, 128)))


def test_polygon_fill_and_opacity_and_line_colour() -> None:
    square = wkb_box(-800, -800, 800, 0)
    line = wkb_line([(-900, 500), (900, 500)])
    css = "#layer { polygon-fill: #0000ff; polygon-opacity: 0.5; line-color: #00ff00; line-width: 4; }"
    image = png([R.RasterLayer("a", css, [(square, {}), (line, {})])])
    r, g, b, a = at(image, pixel(0, -400))
    assert (r, g, b) == (0, 0, 255) and 120 <= a <= 136
    r, g, b, a = at(image, pixel(0, 500))
    assert g > 200 and r < 30 and b < 30 and a > 240
    assert at(image, pixel(0, 900))[3] == 0


def test_zoom_filter_hides_a_rule_below_zoom_5() -> None:
    css = (
        "#layer { marker-fill: red; marker-width: 20; marker-line-width: 0; [zoom < 5] { marker-width: 0; } }"
    )
    for z, drawn in ((3, False), (4, False), (5, True), (6, True)):
        n = 2 ** (z - 1)  # the tile at the world's centre, top-right of it
        bounds = tile_bounds(z, n, n - 1)
        x, y = (bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2
        image = png([R.RasterLayer("p", css, [point(x, y)])], bounds)
        assert redish(at(image, (128, 128))) is drawn, z
        retina = png([R.RasterLayer("p", css, [point(x, y)])], bounds, width=512, height=512, scale=2.0)
        assert redish(at(retina, (256, 256))) is drawn, z  # @2x keeps the tile's zoom
    # a 256 px tile's scale denominator is CartoCSS's zoom z
    for z in (0, 5, 12):
        m = R._map([R.RasterLayer("p", None, [])], tile_bounds(z, 0, 0), 256, 256)
        assert math.isclose(m.scale_denominator(), zoom_scale_denominator(z), rel_tol=1e-6)


def test_attribute_filter_draws_only_matching_features() -> None:
    css = "#layer { marker-width: 0; [magnitude > 3] { marker-fill: red; marker-width: 12; marker-line-width: 0; } }"
    layer = R.RasterLayer("q", css, [point(-500, 0, magnitude=5), point(500, 0, magnitude=2)])
    image = png([layer])
    assert redish(at(image, pixel(-500, 0)))
    assert at(image, pixel(500, 0))[3] == 0


def test_retina_background_and_empty() -> None:
    layer = R.RasterLayer(
        "p", "#layer { marker-fill: red; marker-width: 6; marker-line-width: 0; }", [point(0, 0)]
    )
    image = png([layer], width=512, height=512, scale=2.0)
    assert image.size == (512, 512)
    assert redish(at(image, (256 + 4, 256))) and at(image, (256 + 8, 256))[3] == 0  # 12 px wide
    background = png([R.RasterLayer("p", "Map { background-color: #00f; } #layer { marker-fill: red; }", [])])
    assert at(background, (10, 10)) == (0, 0, 255, 255)
    empty = png([R.RasterLayer("p", None, [])])
    assert alpha_range(empty) == (0, 0)


def test_layers_draw_in_order() -> None:
    below = R.RasterLayer("a", "#layer { marker-fill: red; marker-width: 20; }", [point(0, 0)])
    above = R.RasterLayer(
        "a", "#layer { marker-fill: #00f; marker-width: 8; marker-allow-overlap: true; }", [point(0, 0)]
    )
    image = png([below, above])
    assert at(image, (128, 128))[:3] == (0, 0, 255)
    assert redish(at(image, (128 + 7, 128)))


def test_text_renders() -> None:
    css = "#layer { text-name: [name]; text-size: 20; text-fill: #000; text-allow-overlap: true; }"
    image = png([R.RasterLayer("t", css, [point(0, 0, name="HELLO")])])
    assert alpha_range(image)[1] > 200


def test_grid_has_the_feature_at_its_pixel() -> None:
    layer = R.RasterLayer("g", "#layer { marker-width: 16; }",
                          [point(500, 500, cartodb_id=42, name="here"), point(-500, -500, name="there")])  # fmt: skip
    grid = R.render_grid(layer, BOUNDS, fields=["name"], resolution=4)
    assert len(grid["grid"]) == 64 and all(len(row) == 64 for row in grid["grid"])
    assert grid["data"]["42"] == {"name": "here"}
    assert grid["data"]["2"] == {"name": "there"}

    def key_at(x: float, y: float) -> str:
        px, py = pixel(x, y)
        code = ord(grid["grid"][py // 4][px // 4])
        code -= (code >= 93) + (code >= 35)
        return str(grid["keys"][code - 32])

    assert key_at(500, 500) == "42" and key_at(-500, -500) == "2" and key_at(900, -900) == ""


def test_refusals() -> None:
    with pytest.raises(E.InvalidInput) as info:
        R.render_png([], BOUNDS, width=4096, height=256)
    assert info.value.code == "maps.raster.size"
    with pytest.raises(E.InvalidInput):
        R.render_png([], (1.0, 0.0, 0.0, 1.0))
    with pytest.raises(E.InvalidInput) as info:
        R.render_png([R.RasterLayer("p", "#layer { marker-file: url(x.svg); }", [])], BOUNDS)
    assert info.value.code == "maps.cartocss.externalFile"
    with pytest.raises(E.InvalidInput) as info:
        R.render_png([R.RasterLayer("p", None, [(b"\x01\x02nonsense", {})])], BOUNDS)
    assert info.value.code == "maps.raster.geometry"
    empty = struct.pack(
        "<BIdd", 1, 1, float("nan"), float("nan")
    )  # an empty geometry is skipped, not refused
    assert alpha_range(png([R.RasterLayer("p", None, [(empty, {})])])) == (0, 0)
