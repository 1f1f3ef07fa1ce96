"""A layergroup's tiles: vector (MVT), raster (PNG, ``@2x``), UTFGrid, feature attributes and
static images — through the tile cache, never stale.

Every request loads the layergroup and the principal it acts as (a revoked token serves
nothing), then a **stamp**: the last change and privacy of each table its layers read and the
principal's grants, hashed. The cache key holds the stamp, so a write to a table (or a grant
taken away) makes new keys: the next tile is rendered from the new data, and the old entries
age out. On a miss every layer's SQL is authorised again for the principal, then queried
inside the tile's envelope by DuckDB (``sql.execute.query_around``): ``ST_AsMVT`` for MVT, the
features' WKB for Mapnik (``raster.py``).
"""

from __future__ import annotations

import hashlib
import json
import math
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import select

from entrepot.core import errors as E
from entrepot.core.catalog import StoredTable
from entrepot.core.engine.statements import quote_ident, quote_literal
from entrepot.core.maps import cartocss, mvt, raster
from entrepot.core.maps import config as mapconfig
from entrepot.core.maps.cache import LRUBytes, disk_cache, one, tile_cache
from entrepot.core.maps.config import GEOMETRY, Layer
from entrepot.core.maps.layergroups import Loaded, Prepared, load, prepare_layer, touch
from entrepot.core.sql.execute import query_around

if TYPE_CHECKING:
    from entrepot.core.services import Services

MEDIA_TYPES = {
    "mvt": "application/vnd.mapbox-vector-tile",
    "png": "image/png",
    "grid.json": "application/json",
}
TILE_SIZE = 256
MAX_SCALE = 4
MAX_IMAGE = 2048
WORLD = 20037508.342789244
BASIC_TYPES = ("BOOLEAN", "TINYINT", "SMALLINT", "INTEGER", "BIGINT", "FLOAT", "DOUBLE", "VARCHAR")


@dataclass(frozen=True)
class Tile:
    """A rendered tile or image: its bytes (``b""``: an empty vector tile), content type, an ETag
    (unquoted) and the time its data last changed: what a face's conditional GET needs."""

    body: bytes
    content_type: str
    etag: str
    modified_at: datetime

    @property
    def size(self) -> int:
        return len(self.body)

    @property
    def empty(self) -> bool:
        return not self.body


def tile(
    services: Services, raw_id: str, layers: str | None, z: int, x: int, y: int, fmt: str, scale: int = 1
) -> Tile:
    """Tile ``z/x/y`` of the layergroup ``raw_id`` in ``fmt`` (mvt, png, grid.json) for ``layers``
    (``all``, ``0``, ``0,2``; None: all)."""
    if fmt not in MEDIA_TYPES:
        raise E.InvalidInput(
            f"unsupported tile format {fmt!r}: use png, mvt or grid.json", code="maps.tile.format"
        )
    if not 1 <= scale <= MAX_SCALE or (scale != 1 and fmt != "png"):
        raise E.InvalidInput(
            f"a scale (@{scale}x) needs a png tile and 1 to {MAX_SCALE}", code="maps.tile.scale"
        )
    mvt.check_tile(z, x, y)
    return _cached(
        services,
        raw_id,
        ("tile", layers or "all", z, x, y, fmt, scale),
        MEDIA_TYPES[fmt],
        lambda ctx, layers_: _render(services, ctx, layers_, z, x, y, fmt, scale),
        layers,
        fmt,
    )


def static(
    services: Services,
    raw_id: str,
    bounds: tuple[float, float, float, float],
    width: int,
    height: int,
    layers: str | None = None,
) -> Tile:
    """A PNG of ``width`` by ``height`` pixels showing ``bounds`` (EPSG:3857) of the layergroup."""
    if not (1 <= width <= MAX_IMAGE and 1 <= height <= MAX_IMAGE):
        raise E.InvalidInput(
            f"a static image is 1 to {MAX_IMAGE} pixels wide and high", code="maps.static.size"
        )
    xmin, ymin, xmax, ymax = bounds
    if not (xmin < xmax and ymin < ymax):
        raise E.InvalidInput(
            "the image's bounds are empty: west < east and south < north", code="maps.static.bbox"
        )
    return _cached(
        services,
        raw_id,
        ("static", layers or "all", bounds, width, height),
        MEDIA_TYPES["png"],
        lambda ctx, chosen: _png(services, ctx, chosen, bounds, width, height, 1),
        layers,
        "png",
    )


def center_bounds(
    z: int, lat: float, lng: float, width: int, height: int
) -> tuple[float, float, float, float]:
    """The EPSG:3857 bounds of a ``width`` by ``height`` image centred on ``lat``/``lng`` at zoom ``z``."""
    if not (0 <= z <= mvt.MAX_ZOOM and -90 <= lat <= 90 and -180 <= lng <= 180):
        raise E.InvalidInput("zoom, latitude or longitude out of range", code="maps.static.center")
    cx, cy = lnglat_to_mercator(lng, lat)
    resolution = 2 * WORLD / (TILE_SIZE * 2**z)
    return (cx - width / 2 * resolution, cy - height / 2 * resolution, cx + width / 2 * resolution,
            cy + height / 2 * resolution)  # fmt: skip


def bbox_bounds(west: float, south: float, east: float, north: float) -> tuple[float, float, float, float]:
    """The EPSG:3857 bounds of a longitude/latitude box."""
    x0, y0 = lnglat_to_mercator(west, south)
    x1, y1 = lnglat_to_mercator(east, north)
    return (x0, y0, x1, y1)


def lnglat_to_mercator(lng: float, lat: float) -> tuple[float, float]:
    lat = max(min(lat, 85.0511287798066), -85.0511287798066)
    return (6378137.0 * math.radians(lng), 6378137.0 * math.asinh(math.tan(math.radians(lat))))


def attributes(services: Services, raw_id: str, layer: str, feature_id: str) -> dict[str, Any]:
    """The ``attributes`` columns of the feature whose ``attributes.id`` is ``feature_id``."""
    loaded = load(services, raw_id)
    config = mapconfig.parse(loaded.config)
    chosen = _choose(config, layer, "attributes")
    if len(chosen) != 1 or chosen[0].attributes_id is None:
        raise E.InvalidInput(
            f"layer {layer} has no attributes option: add {{'attributes': {{'id': 'cartodb_id', 'columns': [...]}}}}",
            code="maps.attributes.none",
        )
    x = chosen[0]
    prepared = prepare_layer(services, loaded.principal, loaded.project, x)
    id_type = {c.name: c.type for c in prepared.columns}[x.attributes_id or ""]
    value = _literal(feature_id, id_type)
    columns = ", ".join(quote_ident(c) for c in x.attributes) or "1 AS entrepot_none"
    names, rows = query_around(
        services,
        loaded.project,
        prepared.statements,
        lambda sql: (
            f"SELECT {columns} FROM ({sql}) AS q WHERE {quote_ident(x.attributes_id or '')} = {value} LIMIT 2"
        ),
    )
    if len(rows) != 1:
        raise E.NotFound(
            "Multiple features (2) identified by that id"
            if rows
            else f"Feature {feature_id[:80]!r} not found",
            code="maps.attributes.notFound",
        )
    if not x.attributes:
        return {}
    return {c.name: _json_value(v) for c, v in zip(names, rows[0], strict=True)}


# -- internals ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Context:
    """A layergroup being rendered, and the stamp of everything its tiles depend on now."""

    loaded: Loaded
    stamp: str


_PREPARED_CACHE = 256  # layers kept parsed and authorised, per process


def _prepared(services: Services, ctx: Context, layer: Layer) -> Prepared:
    """``layer`` parsed, authorised and probed for the principal, kept under the stamp: while
    no table it reads changes and the principal's grants stay, the next tile skips all three."""
    cache = one(_layers, services, lambda: LRUBytes(_PREPARED_CACHE))
    key = (ctx.loaded.row_id, ctx.stamp, layer.index)
    hit = cache.get(key)
    if isinstance(hit, Prepared):
        return hit
    prepared = prepare_layer(services, ctx.loaded.principal, ctx.loaded.project, layer)
    cache.put(key, prepared, 1)
    return prepared


_layers: weakref.WeakKeyDictionary[Services, LRUBytes[object]] = weakref.WeakKeyDictionary()


def _cached(
    services: Services,
    raw_id: str,
    what: tuple[Any, ...],
    media_type: str,
    render: Any,
    layers: str | None,
    fmt: str,
) -> Tile:
    loaded = load(services, raw_id)
    touch(services, loaded)
    updated, stamp = _stamp(services, loaded)
    key = (loaded.row_id, stamp, *what)
    memory = tile_cache(services)
    if memory is not None:
        hit = memory.get(key)
        if isinstance(hit, Tile):
            return hit
    etag = hashlib.sha256(repr(key).encode()).hexdigest()[:32]
    disk = disk_cache(services)
    body = disk.get(key) if disk is not None else None
    if body is None:
        config = mapconfig.parse(loaded.config)
        body = render(Context(loaded, stamp), _choose(config, layers, fmt))
        if disk is not None:
            disk.put(key, body)
    result = Tile(body=body, content_type=media_type, etag=etag, modified_at=updated)
    if memory is not None:
        memory.put(key, result, len(body) + 256)
    return result


def _stamp(services: Services, loaded: Loaded) -> tuple[datetime, str]:
    """(when the layergroup's data last changed, a hash of everything its tiles depend on)."""
    with services.catalog.session(readonly=True) as s:
        rows = (
            s.execute(
                select(StoredTable.uuid, StoredTable.last_change_at, StoredTable.privacy).where(
                    StoredTable.project_id == loaded.project.id, StoredTable.uuid.in_(list(loaded.tables))
                )
            ).all()
            if loaded.tables
            else []
        )
    state = sorted((str(u), str(t), str(p)) for u, t, p in rows)
    changes = [t for _, t, _ in rows if t is not None]
    updated = max(changes) if changes else loaded.created_at
    digest = hashlib.sha256(repr((state, loaded.principal)).encode()).hexdigest()
    return updated, digest


def _choose(config: mapconfig.MapConfig, layers: str | None, fmt: str) -> list[Layer]:
    """The data layers ``layers`` names (``all``/None: every one a ``fmt`` tile shows)."""
    if layers in (None, "", "all"):
        chosen = list(config.layers)
    else:
        try:
            indices = [int(part) for part in str(layers).split(",")]
        except ValueError:
            raise E.InvalidInput(
                f"invalid layers {str(layers)[:40]!r}: use all, a layer index or indices like 0,1",
                code="maps.tile.layers",
            ) from None
        if any(not 0 <= i < len(config.layers) for i in indices):
            raise E.InvalidInput(
                f"the map has {len(config.layers)} layers (0 to {len(config.layers) - 1}); {layers} names others",
                code="maps.tile.layers",
            )
        chosen = [config.layers[i] for i in indices]
    if fmt == "png":
        return [x for x in chosen if x.type == "mapnik"]
    if fmt == "grid.json":
        data = [x for x in chosen if x.has_data]
        if len(data) != 1 or layers in (None, "", "all"):
            raise E.InvalidInput("a grid.json tile is of one layer: name its index", code="maps.tile.layers")
        if not data[0].interactivity:
            raise E.InvalidInput(
                f"layer {data[0].index} has no interactivity: add 'interactivity': ['cartodb_id', …]",
                code="maps.tile.noInteractivity",
            )
        return data
    return [x for x in chosen if x.has_data]


def _render(
    services: Services, ctx: Context, chosen: Sequence[Layer], z: int, x: int, y: int, fmt: str, scale: int
) -> bytes:
    loaded = ctx.loaded
    bounds = mvt.tile_bounds(z, x, y)
    if fmt == "mvt":
        parts = []
        for layer in chosen:
            p = _prepared(services, ctx, layer)
            parts.append(_mvt_layer(services, loaded, p, z, x, y))
        return mvt.merge(parts)
    if fmt == "png":
        return _png(services, ctx, chosen, bounds, TILE_SIZE * scale, TILE_SIZE * scale, scale)
    layer = chosen[0]
    p = _prepared(services, ctx, layer)
    features = _features(services, loaded, p, bounds, list(layer.interactivity), buffer=0.0)
    grid = raster.render_grid(
        raster.RasterLayer(name=layer.id, cartocss=layer.cartocss, features=features),
        bounds,
        fields=list(layer.interactivity),
    )
    return json.dumps(grid, separators=(",", ":")).encode()


def _mvt_layer(services: Services, loaded: Loaded, p: Prepared, z: int, x: int, y: int) -> bytes:
    columns = [(c.name, c.type) for c in p.attribute_columns]

    id_column = "cartodb_id" if any(c.name == "cartodb_id" for c in p.columns) else None

    def wrap(sql: str) -> str:
        return mvt.layer_sql(sql, p.layer.id, z, x, y, columns=columns, id_column=id_column)

    _, rows = query_around(services, loaded.project, p.statements, wrap)
    return bytes(rows[0][0] or b"")


def _png(
    services: Services,
    ctx: Context,
    chosen: Sequence[Layer],
    bounds: tuple[float, float, float, float],
    width: int,
    height: int,
    scale: int,
) -> bytes:
    layers = []
    for layer in chosen:
        if layer.type != "mapnik":
            continue
        p = _prepared(services, ctx, layer)
        read = cartocss.compile(layer.cartocss, layer.id).fields  # the rest would only cost time
        names = [c.name for c in p.attribute_columns if c.name in read]
        features = _features(services, ctx.loaded, p, bounds, names, buffer=0.25)
        layers.append(raster.RasterLayer(name=layer.id, cartocss=layer.cartocss, features=features))
    return raster.render_png(layers, bounds, width=width, height=height, scale=float(scale))


def _features(
    services: Services,
    loaded: Loaded,
    p: Prepared,
    bounds: tuple[float, float, float, float],
    names: Sequence[str],
    *,
    buffer: float,
) -> list[tuple[bytes, Mapping[str, Any]]]:
    """(WKB, properties) of the rows of ``p`` whose geometry meets ``bounds`` grown by ``buffer``
    (a fraction of its size: markers drawn across the edge)."""
    xmin, ymin, xmax, ymax = bounds
    dx, dy = (xmax - xmin) * buffer, (ymax - ymin) * buffer
    types = {c.name: c.type for c in p.columns}
    selected = ", ".join(_property(n, types[n]) for n in names)
    limit = services.settings.maps_max_features
    envelope = f"ST_MakeEnvelope({xmin - dx!r}, {ymin - dy!r}, {xmax + dx!r}, {ymax + dy!r})"
    g = quote_ident(GEOMETRY)

    def wrap(sql: str) -> str:
        return (
            f"SELECT ST_AsWKB(CAST({g} AS GEOMETRY)) AS entrepot_wkb{', ' + selected if selected else ''} "
            f"FROM ({sql}) AS q WHERE {g} IS NOT NULL AND NOT ST_IsEmpty({g}) "
            f"AND {g} && {envelope} LIMIT {limit + 1}"  # && reaches the scan: row groups are skipped
        )

    _, rows = query_around(services, loaded.project, p.statements, wrap)
    if len(rows) > limit:
        raise E.InvalidInput(
            f"layer {p.layer.index} has more than {limit} features in this view: zoom in or filter its sql "
            "(ENTREPOT_MAPS_MAX_FEATURES)",
            code="maps.tile.tooManyFeatures",
        )
    return [(bytes(row[0]), dict(zip(names, row[1:], strict=True))) for row in rows]


def _property(name: str, column_type: str) -> str:
    q = quote_ident(name)
    if column_type.upper() in BASIC_TYPES:
        return q
    if column_type.upper().startswith(("DECIMAL", "HUGEINT", "UBIGINT", "UINTEGER", "REAL")):
        return f"CAST({q} AS DOUBLE) AS {q}"
    return f"CAST({q} AS VARCHAR) AS {q}"


def _literal(raw: str, column_type: str) -> str:
    """``raw`` as a SQL literal of ``column_type`` (a number must look like one)."""
    if column_type.upper() in ("TINYINT", "SMALLINT", "INTEGER", "BIGINT", "HUGEINT", "DOUBLE", "FLOAT"):
        try:
            float(raw)
        except ValueError:
            raise E.InvalidInput(
                f"feature id {raw[:80]!r} is not a number", code="maps.attributes.id"
            ) from None
        return f"CAST({quote_literal(raw)} AS {column_type})"
    return quote_literal(raw)


def _json_value(value: Any) -> Any:
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)
