"""A MapConfig, checked: CARTO's layergroup document (``{"version", "layers": [...]}``).

Layer types: ``mapnik`` (``cartodb`` is its old name), ``mvt``, ``torque`` (data layers: an
``sql`` whose rows have ``the_geom_webmercator``), ``http`` (a basemap's URL template, shown
by the client, not rendered here) and ``plain`` (a colour). A data layer's options: ``sql``,
``cartocss`` and ``cartocss_version`` (mapnik), ``interactivity`` (columns of UTFGrids),
``attributes`` (``{"id": column, "columns": [...]}``: what ``attributes/<id>`` answers),
``geom_column`` (only ``the_geom_webmercator``). Every failure is an ``InvalidInput`` whose
``details["layer"]`` names the layer (index, id, type): the Maps face's ``errors_with_context``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from entrepot.core import errors as E

DATA_TYPES = ("mapnik", "mvt", "torque")
TYPES = (*DATA_TYPES, "http", "plain")
ALIASES = {"cartodb": "mapnik"}
MAX_LAYERS = 16
MAX_SQL = 64 * 1024
MAX_CONFIG = 1024 * 1024
GEOMETRY = "the_geom_webmercator"
_VERSION = re.compile(r"^1\.\d{1,2}\.\d{1,2}$")
_COLUMN = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class Layer:
    """One layer of a map: its position, id (``layer<i>`` unless given) and checked options."""

    index: int
    id: str
    type: str
    sql: str | None = None
    cartocss: str | None = None
    cartocss_version: str | None = None
    interactivity: tuple[str, ...] = ()
    attributes_id: str | None = None
    attributes: tuple[str, ...] = ()
    options: Mapping[str, Any] = field(default_factory=dict)  # http/plain: as given

    @property
    def has_data(self) -> bool:
        return self.type in DATA_TYPES


@dataclass(frozen=True)
class MapConfig:
    version: str
    layers: tuple[Layer, ...]
    extra: Mapping[str, Any] = field(default_factory=dict)  # buffersize, dataviews…: kept as given

    def document(self) -> dict[str, Any]:
        """The config as stored (and hashed): the checked layers in CARTO's shape."""
        return {"version": self.version, "layers": [_layer_document(x) for x in self.layers], **self.extra}


def layer_error(layer: Layer | int, message: str, code: str = "maps.layer.invalid") -> E.InvalidInput:
    """An ``InvalidInput`` naming ``layer`` (the face's ``errors_with_context``)."""
    if isinstance(layer, Layer):
        context = {"index": layer.index, "id": layer.id, "type": layer.type}
    else:
        context = {"index": layer}
    return E.InvalidInput(message, code=code, details={"layer": context})


def parse(doc: Any) -> MapConfig:
    """The checked config of ``doc`` (a JSON object); ``InvalidInput`` saying what is wrong."""
    if not isinstance(doc, Mapping):
        raise E.InvalidInput("a map config must be a JSON object with layers", code="maps.config.invalid")
    if len(json.dumps(doc, default=str)) > MAX_CONFIG:
        raise E.PayloadTooLarge(
            f"a map config may be at most {MAX_CONFIG} bytes", code="maps.config.tooLarge"
        )
    version = str(doc.get("version") or "1.0.1")
    if not _VERSION.match(version):
        raise E.InvalidInput(
            f"Invalid or unsupported version {version!r}: use 1.x.y (e.g. 1.0.1)", code="maps.config.version"
        )
    layers = doc.get("layers")
    if not isinstance(layers, list) or not layers:
        raise E.InvalidInput("Missing layers array from layergroup config", code="maps.config.noLayers")
    if len(layers) > MAX_LAYERS:
        raise E.InvalidInput(f"a map may have at most {MAX_LAYERS} layers", code="maps.config.tooManyLayers")
    parsed = tuple(_layer(i, raw) for i, raw in enumerate(layers))
    ids = [x.id for x in parsed]
    for x in parsed:
        if ids.count(x.id) > 1:
            raise layer_error(x, f"layer id {x.id!r} is used by more than one layer")
    extra = {k: v for k, v in doc.items() if k not in ("version", "layers", "api_key", "client")}
    return MapConfig(version=version, layers=parsed, extra=extra)


def _layer(index: int, raw: Any) -> Layer:
    if not isinstance(raw, Mapping):
        raise layer_error(index, f"layer {index} must be an object with type and options")
    kind = str(raw.get("type") or "mapnik").lower()
    kind = ALIASES.get(kind, kind)
    if kind not in TYPES:
        raise layer_error(
            index,
            f"Unsupported layer type {raw.get('type')!r}: use one of mapnik, cartodb, mvt, torque, http, plain",
        )
    options = raw.get("options")
    if not isinstance(options, Mapping):
        raise layer_error(index, f"Missing options in layer {index}")
    layer_id = raw.get("id", f"layer{index}")
    if not isinstance(layer_id, str) or not layer_id or len(layer_id) > 128:
        raise layer_error(index, f"layer {index}'s id must be a non-empty string of at most 128 characters")
    if kind == "http":
        template = options.get("urlTemplate")
        if not isinstance(template, str) or not re.match(r"^https?://", template):
            raise layer_error(index, f"Missing or invalid urlTemplate in http layer {index}")
        return Layer(index=index, id=layer_id, type=kind, options=dict(options))
    if kind == "plain":
        return Layer(index=index, id=layer_id, type=kind, options=dict(options))
    sql = options.get("sql")
    if not isinstance(sql, str) or not sql.strip():
        raise layer_error(index, f"Missing sql for layer {index} options")
    if len(sql) > MAX_SQL:
        raise layer_error(index, f"layer {index}'s sql is longer than {MAX_SQL} characters")
    cartocss = options.get("cartocss")
    if cartocss is not None and not isinstance(cartocss, str):
        raise layer_error(index, f"layer {index}'s cartocss must be a string")
    if kind == "mapnik" and not cartocss and options.get("cartocss_version") is not None:
        raise layer_error(index, f"Missing cartocss for layer {index} options")
    geom = options.get("geom_column", GEOMETRY)
    if geom != GEOMETRY:
        raise layer_error(
            index, f"layer {index}'s geom_column must be {GEOMETRY} (the table's web-mercator column)"
        )
    interactivity = _columns(index, options.get("interactivity"), "interactivity")
    attributes = options.get("attributes")
    attributes_id: str | None = None
    attribute_columns: tuple[str, ...] = ()
    if attributes is not None:
        if not isinstance(attributes, Mapping) or not isinstance(attributes.get("id"), str):
            raise layer_error(index, f"layer {index}'s attributes must be {{'id': column, 'columns': [...]}}")
        attributes_id = _columns(index, [attributes["id"]], "attributes.id")[0]
        attribute_columns = _columns(index, attributes.get("columns") or [], "attributes.columns")
    version = options.get("cartocss_version")
    return Layer(
        index=index,
        id=layer_id,
        type=kind,
        sql=sql,
        cartocss=cartocss,
        cartocss_version=str(version) if version is not None else None,
        interactivity=interactivity,
        attributes_id=attributes_id,
        attributes=attribute_columns,
    )


def _columns(index: int, value: Any, what: str) -> tuple[str, ...]:
    if value is None or value == "":
        return ()
    names: Sequence[Any] = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, Sequence) or isinstance(names, str | bytes):
        raise layer_error(index, f"layer {index}'s {what} must be a list of column names")
    out = []
    for name in names:
        if not isinstance(name, str) or not _COLUMN.match(name.strip()):
            raise layer_error(index, f"layer {index}'s {what} names an invalid column {str(name)[:80]!r}")
        out.append(name.strip())
    return tuple(out)


def _layer_document(x: Layer) -> dict[str, Any]:
    if not x.has_data:
        return {"type": x.type, "id": x.id, "options": dict(x.options)}
    options: dict[str, Any] = {"sql": x.sql}
    if x.cartocss is not None:
        options["cartocss"] = x.cartocss
    if x.cartocss_version is not None:
        options["cartocss_version"] = x.cartocss_version
    if x.interactivity:
        options["interactivity"] = list(x.interactivity)
    if x.attributes_id is not None:
        options["attributes"] = {"id": x.attributes_id, "columns": list(x.attributes)}
    return {"type": x.type, "id": x.id, "options": options}
