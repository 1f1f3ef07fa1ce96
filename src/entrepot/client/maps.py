"""CARTO's Maps API from the SDK (``client.carto.maps``): map configs, named maps, tiles.

``maps.instantiate(config)`` posts a MapConfig (``{"version", "layers"}``) and answers a
``Layergroup``; ``maps.tile(group, z, x, y, format="mvt")`` fetches one of its tiles (``b""``
for an empty vector tile); ``maps.static(group, ...)`` an image. Named maps: ``create_template``,
``templates``, ``get_template``, ``update_template``, ``delete_template`` (a master token) and
``instantiate_named(name, params, auth_token=...)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from entrepot.client._http import Transport

MAP_PATH = "/api/v1/map"
FORMATS = ("mvt", "png", "grid.json")


@dataclass(frozen=True)
class MapLayer:
    """One layer of an instantiated map: its id, type and (data layers) fields with CARTO's types."""

    id: str
    type: str
    fields: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Layergroup:
    """An instantiated map: the id its tiles are fetched by, when its data last changed, its layers."""

    id: str
    last_updated: str | None
    layers: tuple[MapLayer, ...]
    raw: dict[str, Any] = field(repr=False, default_factory=dict)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Layergroup:
        layers = tuple(
            MapLayer(str(x.get("id")), str(x.get("type")), dict((x.get("meta") or {}).get("fields") or {}))
            for x in (body.get("metadata") or {}).get("layers") or []
        )
        return cls(
            id=str(body["layergroupid"]), last_updated=body.get("last_updated"), layers=layers, raw=dict(body)
        )

    def tile_path(
        self,
        z: int | str,
        x: int | str,
        y: int | str,
        *,
        layers: str = "all",
        format: str = "png",
        scale: int = 1,
    ) -> str:
        """The path of a tile (relative to the server's root); ``tile_path("{z}", "{x}", "{y}")``
        is the URL template a map page (MapLibre, Leaflet) fills in."""
        if format not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
        retina = f"@{scale}x" if scale != 1 else ""
        return f"{MAP_PATH}/{quote(self.id, safe=':')}/{layers}/{z}/{x}/{y}{retina}.{format}"


class Maps:
    """Anonymous and named maps of the token's project, and their tiles."""

    def __init__(self, http: Transport):
        self._http = http

    def instantiate(self, config: Mapping[str, Any]) -> Layergroup:
        """Instantiate a MapConfig as this token (its SQL is authorised like the SQL API's).

        An ``api_key`` in ``config`` is dropped (the ``carto`` SDK writes its own into the dict
        it is given): the client's token decides."""
        body = {k: v for k, v in config.items() if k not in ("api_key", "client")}
        return Layergroup.from_json(self._http.json("POST", MAP_PATH, json=body))

    def tile(
        self,
        group: Layergroup | str,
        z: int,
        x: int,
        y: int,
        *,
        layers: str = "all",
        format: str = "mvt",
        scale: int = 1,
    ) -> bytes:
        """A tile's bytes: MVT, PNG (``scale=2`` for @2x) or a UTFGrid's JSON; ``b""`` when a vector
        tile has nothing in it."""
        target = group if isinstance(group, Layergroup) else Layergroup(str(group), None, ())
        return self._http.request(
            "GET", target.tile_path(z, x, y, layers=layers, format=format, scale=scale)
        ).content

    def attributes(self, group: Layergroup | str, layer: int, feature_id: str | int) -> dict[str, Any]:
        """The attributes of one feature (the layer's ``attributes`` option names the id column)."""
        ident = group.id if isinstance(group, Layergroup) else str(group)
        path = f"{MAP_PATH}/{quote(ident, safe=':')}/{layer}/attributes/{quote(str(feature_id), safe='')}"
        return dict(self._http.json("GET", path))

    def static(
        self,
        group: Layergroup | str,
        *,
        zoom: int,
        lat: float,
        lng: float,
        width: int = 600,
        height: int = 400,
    ) -> bytes:
        """A PNG of ``width`` by ``height`` pixels centred on ``lat``/``lng`` at ``zoom``."""
        ident = group.id if isinstance(group, Layergroup) else str(group)
        path = f"{MAP_PATH}/static/center/{quote(ident, safe=':')}/{zoom}/{lat}/{lng}/{width}/{height}.png"
        return self._http.request("GET", path).content

    # -- named maps --------------------------------------------------------------------------

    def create_template(self, template: Mapping[str, Any]) -> str:
        """Keep a named map (CARTO's template document); answers its name."""
        return str(self._http.json("POST", f"{MAP_PATH}/named", json=dict(template))["template_id"])

    def templates(self) -> list[str]:
        """The names of the project's named maps."""
        return [str(n) for n in self._http.json("GET", f"{MAP_PATH}/named")["template_ids"]]

    def get_template(self, name: str) -> dict[str, Any]:
        return dict(self._http.json("GET", f"{MAP_PATH}/named/{quote(name, safe='')}")["template"])

    def update_template(self, name: str, template: Mapping[str, Any]) -> None:
        self._http.json("PUT", f"{MAP_PATH}/named/{quote(name, safe='')}", json=dict(template))

    def delete_template(self, name: str) -> None:
        self._http.request("DELETE", f"{MAP_PATH}/named/{quote(name, safe='')}")

    def instantiate_named(
        self, name: str, params: Mapping[str, Any] | None = None, *, auth_token: str | None = None
    ) -> Layergroup:
        """Instantiate the named map ``name`` with its placeholders' values (the rest: defaults)."""
        query = {"auth_token": auth_token} if auth_token else None
        body = self._http.json(
            "POST", f"{MAP_PATH}/named/{quote(name, safe='')}", params=query, json=dict(params or {})
        )
        return Layergroup.from_json(body)
