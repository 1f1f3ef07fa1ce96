"""The Maps API's commands, one per request of the CARTO face.

Anonymous maps are instantiated as the caller; named maps are managed by a master key and
instantiated by whoever their auth admits, as the project's owner (``templates.py``). Tiles
and static images are served by ``tiles.py`` for a layergroup id; a named map's tile URL
instantiates the template with its defaults (and the ``auth_token``) first.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from entrepot.core import errors as E
from entrepot.core.maps import config as mapconfig
from entrepot.core.maps import templates, tiles
from entrepot.core.maps.layergroups import LayergroupView, instantiate, owner_principal
from entrepot.core.maps.templates import TemplateView
from entrepot.core.maps.tiles import Tile
from entrepot.core.sql.authorize import find_project, member_project
from entrepot.core.sql.service import Caller

if TYPE_CHECKING:
    from entrepot.core.services import Services


def create_anonymous(services: Services, caller: Caller, doc: Any) -> LayergroupView:
    """Instantiate the MapConfig ``doc`` as the caller (no key: the default public key)."""
    project = member_project(services, caller.principal, caller.project)
    return instantiate(services, caller.principal, project, mapconfig.parse(doc))


def instantiate_named(
    services: Services, caller: Caller, template_id: str, params: Mapping[str, Any], auth_token: str | None
) -> LayergroupView:
    """Instantiate the named map ``template_id`` with ``params`` (its placeholders' values)."""
    return _named(services, caller, template_id, params, auth_token)[1]


def _named(
    services: Services, caller: Caller, template_id: str, params: Mapping[str, Any], auth_token: str | None
) -> tuple[TemplateView, LayergroupView]:
    project = find_project(services, caller.project)
    view = templates.stored(services, project, template_id)
    if not caller.principal.is_master or caller.principal.project_id != project.id:
        templates.authorize(view.template, auth_token)
    filled = templates.fill(view.template, params)
    group = instantiate(
        services, owner_principal(project), project, mapconfig.parse(filled), template=view.name
    )
    return view, group


def named_tile(
    services: Services,
    caller: Caller,
    template_id: str,
    auth_token: str | None,
    layers: str | None,
    z: int,
    x: int,
    y: int,
    fmt: str,
    scale: int = 1,
) -> Tile:
    """A tile of the named map ``template_id`` with its placeholders' defaults."""
    group = instantiate_named(services, caller, template_id, {}, auth_token)
    return tiles.tile(services, group.id, layers, z, x, y, fmt, scale)


def named_static(
    services: Services, caller: Caller, template_id: str, auth_token: str | None, width: int, height: int
) -> Tile:
    """A static image of the named map at its template's ``view`` (center and zoom, or bounds)."""
    template, group = _named(services, caller, template_id, {}, auth_token)
    view = template.template.get("view") or {}
    bounds = view.get("bounds") if isinstance(view, Mapping) else None
    center = view.get("center") if isinstance(view, Mapping) else None
    if isinstance(bounds, Mapping) and all(
        isinstance(bounds.get(k), int | float) for k in ("west", "south", "east", "north")
    ):
        box = tiles.bbox_bounds(bounds["west"], bounds["south"], bounds["east"], bounds["north"])
    elif isinstance(center, Mapping) and isinstance(view.get("zoom"), int | float):
        box = tiles.center_bounds(
            int(view["zoom"]), float(center.get("lat", 0)), float(center.get("lng", 0)), width, height
        )
    else:
        box = tiles.center_bounds(0, 0.0, 0.0, width, height)
    return tiles.static(services, group.id, box, width, height)


def layergroup_tile(
    services: Services, layergroup: str, layers: str | None, z: int, x: int, y: int, fmt: str, scale: int = 1
) -> Tile:
    return tiles.tile(services, layergroup, layers, z, x, y, fmt, scale)


def feature_attributes(services: Services, layergroup: str, layer: str, feature_id: str) -> dict[str, Any]:
    return tiles.attributes(services, layergroup, layer, feature_id)


def static_center(
    services: Services, layergroup: str, z: int, lat: float, lng: float, width: int, height: int
) -> Tile:
    return tiles.static(services, layergroup, tiles.center_bounds(z, lat, lng, width, height), width, height)


def static_bbox(services: Services, layergroup: str, bbox: str, width: int, height: int) -> Tile:
    try:
        west, south, east, north = (float(v) for v in bbox.split(","))
    except ValueError:
        raise E.InvalidInput(
            "bbox must be west,south,east,north in degrees", code="maps.static.bbox"
        ) from None
    return tiles.static(services, layergroup, tiles.bbox_bounds(west, south, east, north), width, height)


# -- templates --------------------------------------------------------------------------------


def create_template(services: Services, caller: Caller, doc: Any) -> str:
    project = member_project(services, caller.principal, caller.project)
    return templates.create(services, caller.principal, project, doc)


def template_names(services: Services, caller: Caller) -> list[str]:
    project = member_project(services, caller.principal, caller.project)
    return templates.names(services, caller.principal, project)


def get_template(services: Services, caller: Caller, template_id: str) -> TemplateView:
    project = member_project(services, caller.principal, caller.project)
    return templates.get(services, caller.principal, project, template_id)


def update_template(services: Services, caller: Caller, template_id: str, doc: Any) -> str:
    project = member_project(services, caller.principal, caller.project)
    return templates.update(services, caller.principal, project, template_id, doc)


def delete_template(services: Services, caller: Caller, template_id: str) -> None:
    project = member_project(services, caller.principal, caller.project)
    templates.delete(services, caller.principal, project, template_id)
