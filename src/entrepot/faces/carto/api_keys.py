"""CARTO's Auth API v3: ``api/v3/api_keys`` (list, get, create, regenerate, delete) and ``api/v3/me``.

Served like the SQL API under ``/user/<project>/``, ``/u/<project>/`` and the root, with and
without a trailing slash. Keys and their rules are ``core/api_keys.py``; this module reads
CARTO's request shapes into its typed inputs and renders CARTO's key JSON. Errors use the
Auth API's envelope ``{"errors": "message", "errors_cause": null}`` (``deps.render_error``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from entrepot.core import api_keys as keys
from entrepot.core import errors as E
from entrepot.faces.carto.deps import caller, params_of
from entrepot.faces.carto.routing import add_routes
from entrepot.faces.errors import HTTPError
from entrepot.faces.http import services_of

PATH_PARAMETERS = {
    "project": "The project's name (CARTO's user name).",
    "name": "The API key's name.",
}


class BadFilter(HTTPError):
    """An unknown key type in ``?type=`` (CARTO answers 400, not the Auth API's 422)."""

    status = 400


# -- rendering -----------------------------------------------------------------------------------


def _time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def key_json(key: keys.ApiKeyView) -> dict[str, Any]:
    """CARTO's API key JSON: every grant type present with its list (the SDK reads each)."""
    return {
        "name": key.name,
        "type": key.type,
        "token": key.token,
        "user": {"username": key.user},
        "grants": [
            {"type": "apis", "apis": list(key.apis)},
            {
                "type": "database",
                "tables": [
                    {"schema": t.schema, "name": t.name, "permissions": list(t.permissions)}
                    for t in key.tables
                ],
                "schemas": [{"name": s.name, "permissions": list(s.permissions)} for s in key.schemas],
            },
            {"type": "dataservices", "services": list(key.services)},
        ],
        "created_at": _time(key.created_at),
        "updated_at": _time(key.updated_at),
    }


def _href(request: Request, page: int, per_page: int) -> dict[str, str]:
    query = {
        k: v for k, v in request.query_params.items() if k not in ("api_key", "client", "page", "per_page")
    }
    url = request.url.remove_query_params(list(request.query_params.keys())).include_query_params(
        **query, page=page, per_page=per_page
    )
    return {"href": str(url)}


def page_json(request: Request, page: keys.KeyPage) -> dict[str, Any]:
    links = {
        "first": _href(request, 1, page.per_page),
        "last": _href(request, page.last_page, page.per_page),
    }
    if page.page < page.last_page:
        links["next"] = _href(request, page.page + 1, page.per_page)
    if page.page > 1:
        links["prev"] = _href(request, page.page - 1, page.per_page)
    return {
        "total": page.total,
        "count": len(page.keys),
        "result": [key_json(k) for k in page.keys],
        "_links": links,
    }


# -- parsing -------------------------------------------------------------------------------------


def _positive(params: dict[str, Any], name: str, default: int) -> int:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        return int(raw)
    except (TypeError, ValueError):
        raise BadFilter(f"{name} must be an integer, not {raw!r}", code="apiKeys.invalidParam") from None


def _filter(params: dict[str, Any]) -> keys.KeyFilter:
    raw = params.get("type")
    types: frozenset[str] | None = None
    if raw:
        types = frozenset(t.strip() for t in str(raw).split(",") if t.strip())
        unknown = sorted(types - set(keys.KEY_TYPES))
        if unknown:
            raise BadFilter(
                f"Invalid type {', '.join(unknown)}: use {', '.join(keys.KEY_TYPES)}",
                code="apiKeys.invalidType",
            )
    return keys.KeyFilter(types, _positive(params, "page", 1), _positive(params, "per_page", 10))


def _strings(value: Any) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, list):
        return tuple(value)
    return (value,)  # the core says what is wrong with it


def _objects(value: Any, what: str) -> list[dict[str, Any]]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise E.InvalidInput(f"Grants {what} must be a list", code="apiKeys.invalid")
    return [v if isinstance(v, dict) else {} for v in value]


def key_spec(params: dict[str, Any]) -> keys.KeySpec:
    """The key a create request describes: ``{"name", "grants": [{"type": "apis"|"database"|"dataservices", …}]}``."""
    grants = params.get("grants")
    if not isinstance(grants, list) or not all(isinstance(g, dict) for g in grants):
        raise E.InvalidInput(
            "Validation failed: Grants must be a list of grant objects", code="apiKeys.invalid"
        )
    apis: tuple[str, ...] = ()
    tables: list[keys.TableGrant] = []
    schemas: list[keys.SchemaGrant] = []
    services: tuple[str, ...] = ()
    for grant in grants:
        kind = grant.get("type")
        if kind == "apis":
            apis += _strings(grant.get("apis")) or ()
        elif kind == "database":
            tables += [
                keys.TableGrant(t.get("schema"), t.get("name"), _strings(t.get("permissions")))
                for t in _objects(grant.get("tables"), "database.tables")
            ]
            schemas += [
                keys.SchemaGrant(s.get("name"), _strings(s.get("permissions")))
                for s in _objects(grant.get("schemas"), "database.schemas")
            ]
        elif kind == "dataservices":
            services += _strings(grant.get("services")) or ()
        else:
            raise E.InvalidInput(
                f"Validation failed: Grants type {kind!r} is not valid", code="apiKeys.invalid"
            )
    name = params.get("name")
    return keys.KeySpec(
        name=name if isinstance(name, str) else "",
        apis=apis,
        tables=tuple(tables),
        schemas=tuple(schemas),
        services=services,
    )


# -- endpoints -----------------------------------------------------------------------------------


def _project(request: Request) -> str | None:
    return request.path_params.get("project")


async def me(request: Request) -> Response:
    params = await params_of(request)
    call = await caller(request, _project(request), params)
    found = await run_in_threadpool(keys.me, services_of(request), call)
    body: dict[str, Any] = {"config": {"user_name": found.user_name, "account_host": request.url.netloc}}
    if found.key_type is not None:
        body["user_data"] = {
            "id": str(found.project_id),
            "username": found.user_name,
            "base_url": f"{request.url.scheme}://{request.url.netloc}/user/{found.user_name}",
            "created_at": _time(found.created_at),
            "api_key_type": found.key_type,
            "api_key_name": found.key_name,
        }
    return JSONResponse(body)


async def list_keys(request: Request) -> Response:
    params = await params_of(request)
    wanted = _filter(params)
    call = await caller(request, _project(request), params)
    page = await run_in_threadpool(keys.list_keys, services_of(request), call, wanted)
    return JSONResponse(page_json(request, page))


async def get_key(request: Request) -> Response:
    params = await params_of(request)
    call = await caller(request, _project(request), params)
    key = await run_in_threadpool(keys.get_key, services_of(request), call, request.path_params["name"])
    return JSONResponse(key_json(key))


async def create_key(request: Request) -> Response:
    params = await params_of(request)
    call = await caller(request, _project(request), params)
    spec = key_spec(params)
    key = await run_in_threadpool(keys.create_key, services_of(request), call, spec)
    return JSONResponse(key_json(key), status_code=201)


async def regenerate(request: Request) -> Response:
    params = await params_of(request)
    call = await caller(request, _project(request), params)
    key = await run_in_threadpool(keys.regenerate, services_of(request), call, request.path_params["name"])
    return JSONResponse(key_json(key))


async def delete_key(request: Request) -> Response:
    params = await params_of(request)
    call = await caller(request, _project(request), params)
    await run_in_threadpool(keys.delete_key, services_of(request), call, request.path_params["name"])
    return Response(status_code=204)


def router() -> APIRouter:
    r = APIRouter()
    add_routes(
        r,
        [
            ("/api/v3/me", me, ["GET"], "Who the URL's user is (and the caller, when authenticated)"),
            ("/api/v3/api_keys", list_keys, ["GET"], "List API keys (type filter, pages)"),
            ("/api/v3/api_keys", create_key, ["POST"], "Create a regular API key with grants"),
            ("/api/v3/api_keys/{name}/token/regenerate", regenerate, ["POST"], "Give an API key a new token"),
            ("/api/v3/api_keys/{name}", get_key, ["GET"], "An API key by name"),
            ("/api/v3/api_keys/{name}", delete_key, ["DELETE"], "Delete a regular API key"),
        ],
        PATH_PARAMETERS,
    )
    return r
