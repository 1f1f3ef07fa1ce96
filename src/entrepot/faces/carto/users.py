"""The users API (organization admin): ``api/v1/organization/<org>/users[/<username>]`` and
``api/v1/users[/<username>]`` (the caller's organization), also under ``api/v2``, in CARTO's user
JSON (never the password)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from entrepot.core import organizations
from entrepot.core.organizations import UserInput, UserView
from entrepot.faces.carto.deps import caller, params_of
from entrepot.faces.carto.routing import add_routes
from entrepot.faces.http import services_of

PATH_PARAMETERS = {
    "project": "The calling project's name (CARTO's user name).",
    "org": "The organization's name.",
    "username": "The user's name (its project's name).",
}


def user_json(v: UserView, request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    a = v.attributes
    body: dict[str, Any] = {
        "username": v.username,
        "email": v.email,
        "name": a.get("name"),
        "last_name": a.get("last_name"),
        "description": a.get("description"),
        "location": a.get("location"),
        "website": a.get("website"),
        "twitter_username": a.get("twitter_username"),
        "disqus_shortname": a.get("disqus_shortname"),
        "available_for_hire": bool(a.get("available_for_hire", False)),
        "google_maps_query_string": a.get("google_maps_query_string"),
        "avatar_url": a.get("avatar_url"),
        "base_url": f"{base}/user/{v.username}",
        "org_admin": v.org_admin,
        "org_user": True,
        "viewer": bool(a.get("viewer", False)),
        "remove_logo": False,
        "quota_in_bytes": a.get("quota_in_bytes"),
        "soft_geocoding_limit": a.get("soft_geocoding_limit"),
        "db_size_in_bytes": v.db_size_in_bytes,
        "table_count": v.table_count,
        "all_visualization_count": v.all_visualization_count,
        "public_visualization_count": v.public_visualization_count,
        "organization": v.organization,
    }
    if v.api_key is not None:
        body["api_key"] = v.api_key
    return body


def _input(params: dict[str, Any]) -> UserInput:
    def text(name: str) -> str | None:
        value = params.get(name)
        return None if value is None else str(value)

    return UserInput(
        username=text("username"),
        email=text("email"),
        password=text("password"),
        attributes={k: v for k, v in params.items() if k in organizations.PROFILE_FIELDS},
    )


async def create(request: Request) -> Response:
    params = await params_of(request)
    call = await caller(request, request.path_params.get("project"), params)
    view = await run_in_threadpool(
        organizations.create_user, services_of(request), call, request.path_params.get("org"), _input(params)
    )
    return JSONResponse(user_json(view, request))


async def show(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    view = await run_in_threadpool(
        organizations.get_user,
        services_of(request),
        call,
        request.path_params.get("org"),
        request.path_params["username"],
    )
    return JSONResponse(user_json(view, request))


async def update(request: Request) -> Response:
    params = await params_of(request)
    call = await caller(request, request.path_params.get("project"), params)
    view = await run_in_threadpool(
        organizations.update_user,
        services_of(request),
        call,
        request.path_params.get("org"),
        request.path_params["username"],
        _input(params),
    )
    return JSONResponse(user_json(view, request))


async def remove(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    await run_in_threadpool(
        organizations.delete_user,
        services_of(request),
        call,
        request.path_params.get("org"),
        request.path_params["username"],
    )
    return Response(status_code=204)


def router() -> APIRouter:
    r = APIRouter()
    routes: list[Any] = []
    for version in ("v1", "v2"):
        for collection in (f"/api/{version}/organization/{{org}}/users", f"/api/{version}/users"):
            routes += [
                (collection, create, ["POST"], "Create a user of the organization (a project)"),
                (f"{collection}/{{username}}", show, ["GET"], "A user of the organization"),
                (f"{collection}/{{username}}", update, ["PUT"], "Change a user's e-mail, password, profile"),
                (f"{collection}/{{username}}", remove, ["DELETE"], "Delete a user and all its data"),
            ]
    add_routes(r, routes, PATH_PARAMETERS)
    return r
