"""CARTO's Maps API (``api/v1/map``): anonymous maps, named maps, tiles, attributes, static images.

Layergroups answer in CARTO's JSON (``layergroupid``, ``metadata.layers``, ``cdn_url``,
``last_updated``); a ``callback`` parameter wraps it as JSONP, as CARTO's GET instantiation
does. Tiles carry an ``ETag`` and ``Last-Modified`` (a matching ``If-None-Match`` gets 304)
and ``Cache-Control: no-cache``: clients keep them but ask again, and a write to a table makes
a new ETag. An empty vector tile is 204. Errors use the Maps envelope (``deps.render_error``):
``{"errors": [...], "errors_with_context": [{"type", "message", "layer"?}]}``. Layergroup
answers and tiles allow any origin (``Access-Control-Allow-Origin: *``): a map page elsewhere
instantiates with a GET (``config=``, no preflight) and fetches the tiles.
"""

from __future__ import annotations

import json
import re
from email.utils import format_datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from entrepot.core import errors as E
from entrepot.core.maps import service
from entrepot.core.maps.layergroups import LayergroupView
from entrepot.core.maps.tiles import Tile
from entrepot.faces.carto.datasets import base_of
from entrepot.faces.carto.deps import caller
from entrepot.faces.carto.routing import add_routes
from entrepot.faces.carto.times import iso
from entrepot.faces.http import decode_json, read_body, services_of
from entrepot.faces.objects_http import not_modified, quoted_etag

PATH_PARAMETERS = {
    "project": "The project's name (CARTO's user name).",
    "template_id": "A named map's name (or user@name).",
    "token": "A layergroup id, as an instantiation answered it.",
    "layers": "Layer indices: all, 0, or 0,1,2.",
    "layer": "One layer's index.",
    "z": "Zoom level.",
    "x": "Tile column.",
    "y_format": "Tile row and format: 3.png, 3@2x.png, 3.mvt, 3.grid.json.",
    "feature_id": "The value of the layer's attributes id column.",
    "lat": "Latitude of the image's centre.",
    "lng": "Longitude of the image's centre.",
    "bbox": "west,south,east,north in degrees.",
    "width": "Image width in pixels.",
    "height_format": "Image height in pixels, then .png.",
}
MAX_CONFIG_BODY = 1024 * 1024
# layergroups and tiles are read by map pages on other origins (no cookies: the id is the key)
CORS = {"Access-Control-Allow-Origin": "*"}
_TILE = re.compile(r"^(\d+)(?:@([1-4])x)?\.(png|mvt|grid\.json)$")
_CALLBACK = re.compile(r"^[A-Za-z_$][\w$.]{0,63}$")


def layergroup_json(view: LayergroupView, request: Request) -> dict[str, Any]:
    base = base_of(request)
    host = request.url.netloc
    layers = []
    for x in view.layers:
        meta: dict[str, Any] = {"stats": [], "fields": dict(x.fields)}
        if x.type == "mapnik":
            meta["cartocss"] = x.cartocss or ""
        layers.append({"type": x.type, "id": x.id, "meta": meta})
    return {
        "layergroupid": view.public_id,
        "metadata": {"layers": layers, "dataviews": {}, "analyses": []},
        "cdn_url": {
            "http": host,
            "https": host,
            "templates": {
                "http": {"url": base, "subdomains": []},
                "https": {"url": base, "subdomains": []},
            },
        },
        "last_updated": iso(view.last_updated),
    }


def _answer(request: Request, body: dict[str, Any], params: dict[str, Any]) -> Response:
    callback = params.get("callback")
    if callback:
        if not isinstance(callback, str) or not _CALLBACK.match(callback):
            raise E.InvalidInput("callback must be a JavaScript function name", code="maps.callback")
        text = f"/**/{callback}({json.dumps(body)});"
        return Response(text, media_type="text/javascript; charset=utf-8", headers=CORS)
    return JSONResponse(body, headers=CORS)


def _decode(raw: bytes | str, what: str) -> Any:
    try:
        return decode_json(raw)
    except ValueError as exc:
        raise E.InvalidInput(f"{what} is malformed: {exc}", code="maps.invalidJson") from exc


async def _json_body(request: Request) -> Any:
    raw = await read_body(request, MAX_CONFIG_BODY)
    return _decode(raw, "the JSON body") if raw.strip() else {}


def _config_param(params: dict[str, Any]) -> Any:
    raw = params.get("config")
    if raw is None:
        raise E.InvalidInput(
            "a GET instantiation needs the map config in the config parameter", code="maps.noConfig"
        )
    return _decode(raw, "the config parameter")


def _with_key(params: dict[str, Any], doc: Any) -> dict[str, Any]:
    """The query parameters and the body's ``api_key`` (the SDK sends it in the JSON body)."""
    if isinstance(doc, dict) and "api_key" in doc:
        return {**params, "api_key": doc["api_key"]}
    return params


def _tile_response(request: Request, result: Tile) -> Response:
    headers = {
        **CORS,
        "ETag": quoted_etag(result.etag),
        "Last-Modified": format_datetime(result.modified_at, usegmt=True),
        "Cache-Control": "public, no-cache",
    }
    if not_modified(request.headers, result):  # the downloads' one conditional-GET rule
        return Response(status_code=304, headers=headers)
    if result.empty:
        return Response(status_code=204, headers=headers)
    return Response(result.body, media_type=result.content_type, headers=headers)


def _tile_of(raw: str) -> tuple[int, str, int]:
    match = _TILE.match(raw)
    if match is None:
        raise E.NotFound(
            f"unknown tile {raw[:40]!r}: use <y>.png, <y>@2x.png, <y>.mvt or <y>.grid.json",
            code="maps.tile.unknown",
        )
    scale = int(match.group(2) or 1)
    return int(match.group(1)), match.group(3), scale


def _int(raw: str, what: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise E.InvalidInput(
            f"{what} must be an integer, not {raw[:40]!r}", code="maps.tile.invalid"
        ) from None


# -- anonymous maps ---------------------------------------------------------------------------


async def create_anonymous(request: Request) -> Response:
    params = dict(request.query_params)
    doc = await _json_body(request) if request.method == "POST" else _config_param(params)
    if isinstance(doc, dict):
        params.update({k: v for k, v in doc.items() if k in ("api_key", "callback")})
        doc = {k: v for k, v in doc.items() if k not in ("api_key", "client")}
    call = await caller(request, request.path_params.get("project"), params)
    view = await run_in_threadpool(service.create_anonymous, services_of(request), call, doc)
    return _answer(request, layergroup_json(view, request), params)


# -- named maps -------------------------------------------------------------------------------


async def list_templates(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    names = await run_in_threadpool(service.template_names, services_of(request), call)
    return JSONResponse({"template_ids": names})


async def create_template(request: Request) -> Response:
    doc = await _json_body(request)
    params = {
        **dict(request.query_params),
        **({"api_key": doc["api_key"]} if isinstance(doc, dict) and "api_key" in doc else {}),
    }
    call = await caller(request, request.path_params.get("project"), params)
    if isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if k not in ("api_key", "client")}
    name = await run_in_threadpool(service.create_template, services_of(request), call, doc)
    return JSONResponse({"template_id": name})


async def get_template(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    view = await run_in_threadpool(
        service.get_template, services_of(request), call, request.path_params["template_id"]
    )
    return JSONResponse({"template": dict(view.template)})


async def update_template(request: Request) -> Response:
    doc = await _json_body(request)
    params = {
        **dict(request.query_params),
        **({"api_key": doc["api_key"]} if isinstance(doc, dict) and "api_key" in doc else {}),
    }
    call = await caller(request, request.path_params.get("project"), params)
    if isinstance(doc, dict):
        doc = {k: v for k, v in doc.items() if k not in ("api_key", "client")}
    name = await run_in_threadpool(
        service.update_template, services_of(request), call, request.path_params["template_id"], doc
    )
    return JSONResponse({"template_id": name})


async def delete_template(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    await run_in_threadpool(
        service.delete_template, services_of(request), call, request.path_params["template_id"]
    )
    return Response(status_code=204)


async def instantiate_named(request: Request) -> Response:
    params = dict(request.query_params)
    if request.method == "POST":
        body = await _json_body(request)
        if not isinstance(body, dict):
            raise E.InvalidInput("the instantiation's body must be a JSON object of placeholder values")
    else:
        raw = params.get("config")
        body = _decode(raw, "the config parameter") if raw else {}
        if not isinstance(body, dict):
            raise E.InvalidInput(
                "config must be a JSON object of placeholder values", code="maps.invalidJson"
            )
    if "api_key" in body:
        params["api_key"] = body["api_key"]
    call = await caller(request, request.path_params.get("project"), params)
    values = {k: v for k, v in body.items() if k not in ("api_key", "client", "auth_token")}
    view = await run_in_threadpool(
        service.instantiate_named,
        services_of(request),
        call,
        request.path_params["template_id"],
        values,
        params.get("auth_token") or body.get("auth_token"),
    )
    return _answer(request, layergroup_json(view, request), params)


async def named_tile(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    y, fmt, scale = _tile_of(request.path_params["y_format"])
    result = await run_in_threadpool(
        service.named_tile,
        services_of(request),
        call,
        request.path_params["template_id"],
        params.get("auth_token"),
        request.path_params["layers"],
        _int(request.path_params["z"], "z"),
        _int(request.path_params["x"], "x"),
        y,
        fmt,
        scale,
    )
    return _tile_response(request, result)


async def named_static(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    height = _static_height(request.path_params["height_format"])
    result = await run_in_threadpool(
        service.named_static,
        services_of(request),
        call,
        request.path_params["template_id"],
        params.get("auth_token"),
        _int(request.path_params["width"], "width"),
        height,
    )
    return _tile_response(request, result)


# -- layergroup tiles -------------------------------------------------------------------------


async def layergroup_tile(request: Request) -> Response:
    y, fmt, scale = _tile_of(request.path_params["y_format"])
    result = await run_in_threadpool(
        service.layergroup_tile,
        services_of(request),
        request.path_params["token"],
        request.path_params.get("layers"),
        _int(request.path_params["z"], "z"),
        _int(request.path_params["x"], "x"),
        y,
        fmt,
        scale,
    )
    return _tile_response(request, result)


async def attributes(request: Request) -> Response:
    found = await run_in_threadpool(
        service.feature_attributes,
        services_of(request),
        request.path_params["token"],
        request.path_params["layer"],
        request.path_params["feature_id"],
    )
    return JSONResponse(found)


def _static_height(raw: str) -> int:
    if not raw.endswith(".png"):
        raise E.NotFound("static images are PNG: end the path with <height>.png", code="maps.static.format")
    return _int(raw[: -len(".png")], "height")


async def static_center(request: Request) -> Response:
    p = request.path_params
    try:
        lat, lng = float(p["lat"]), float(p["lng"])
    except ValueError:
        raise E.InvalidInput("lat and lng must be numbers", code="maps.static.center") from None
    result = await run_in_threadpool(
        service.static_center,
        services_of(request),
        p["token"],
        _int(p["z"], "z"),
        lat,
        lng,
        _int(p["width"], "width"),
        _static_height(p["height_format"]),
    )
    return _tile_response(request, result)


async def static_bbox(request: Request) -> Response:
    p = request.path_params
    result = await run_in_threadpool(
        service.static_bbox,
        services_of(request),
        p["token"],
        p["bbox"],
        _int(p["width"], "width"),
        _static_height(p["height_format"]),
    )
    return _tile_response(request, result)


def router() -> APIRouter:
    r = APIRouter()
    m = "/api/v1/map"
    add_routes(
        r,
        [
            (f"{m}/named", list_templates, ["GET"], "List the named maps (their names)"),
            (f"{m}/named", create_template, ["POST"], "Create a named map (a template)"),
            (f"{m}/named/{{template_id}}", get_template, ["GET"], "A named map's template"),
            (f"{m}/named/{{template_id}}", update_template, ["PUT"], "Replace a named map's template"),
            (f"{m}/named/{{template_id}}", delete_template, ["DELETE"], "Delete a named map"),
            (
                f"{m}/named/{{template_id}}",
                instantiate_named,
                ["POST"],
                "Instantiate a named map: a layergroup",
            ),
            (
                f"{m}/named/{{template_id}}/jsonp",
                instantiate_named,
                ["GET"],
                "Instantiate a named map (JSONP)",
            ),
            (
                f"{m}/named/{{template_id}}/{{layers}}/{{z}}/{{x}}/{{y_format}}",
                named_tile,
                ["GET"],
                "A tile of a named map (its placeholders' defaults)",
            ),
            (
                f"{m}/static/named/{{template_id}}/{{width}}/{{height_format}}",
                named_static,
                ["GET"],
                "A static image of a named map at its view",
            ),
            (
                f"{m}/static/center/{{token}}/{{z}}/{{lat}}/{{lng}}/{{width}}/{{height_format}}",
                static_center,
                ["GET"],
                "A static image of a layergroup around a centre",
            ),
            (
                f"{m}/static/bbox/{{token}}/{{bbox}}/{{width}}/{{height_format}}",
                static_bbox,
                ["GET"],
                "A static image of a layergroup over a box",
            ),
            (
                f"{m}/{{token}}/{{layer}}/attributes/{{feature_id}}",
                attributes,
                ["GET"],
                "A feature's attributes",
            ),
            (f"{m}/{{token}}/{{z}}/{{x}}/{{y_format}}", layergroup_tile, ["GET"], "A tile of all layers"),
            (
                f"{m}/{{token}}/{{layers}}/{{z}}/{{x}}/{{y_format}}",
                layergroup_tile,
                ["GET"],
                "A tile of some layers: png, @2x.png, mvt, grid.json",
            ),
            (m, create_anonymous, ["POST"], "Instantiate an anonymous map (a MapConfig)"),
            (m, create_anonymous, ["GET"], "Instantiate an anonymous map (config=, callback= for JSONP)"),
        ],
        PATH_PARAMETERS,
    )
    return r
