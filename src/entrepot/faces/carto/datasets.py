"""Datasets: ``api/v1/viz`` with ``type=table`` (list, show by id or name, PUT, DELETE) and
``api/v1/tables/<id>``, in CARTO's visualization JSON. Maps (``type=derived``) list empty."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from entrepot.core import datasets
from entrepot.core import errors as E
from entrepot.core.datasets import DatasetChange, DatasetView
from entrepot.faces.carto.deps import caller, params_of
from entrepot.faces.carto.routing import add_routes
from entrepot.faces.http import services_of

PATH_PARAMETERS = {
    "project": "The project's name (CARTO's user name).",
    "viz_id": "The dataset's id, or its name.",
    "table_id": "The table's id (a dataset's table id).",
}


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat()


def _permission(v: DatasetView) -> dict[str, Any]:
    return {
        "id": v.id,
        "owner": {"id": v.project, "username": v.project},
        "entity": {"id": v.id, "type": "vis"},
        "acl": [],
        "created_at": _iso(v.created_at),
        "updated_at": _iso(v.updated_at),
    }


def _table(v: DatasetView) -> dict[str, Any]:
    return {
        "id": v.id,
        "name": v.name,
        "privacy": v.privacy.upper(),
        "geometry_types": [],
        "row_count": v.row_count,
        "size": v.size,
        "updated_at": _iso(v.updated_at),
        "synchronization": None,
        "permission": _permission(v),
    }


def dataset_json(v: DatasetView, base_url: str) -> dict[str, Any]:
    a = v.attributes
    return {
        "id": v.id,
        "name": v.name,
        "display_name": a.get("display_name"),
        "type": "table",
        "privacy": v.privacy.upper(),
        "map_id": None,
        "active_layer_id": None,
        "tags": list(a.get("tags") or []),
        "description": a.get("description"),
        "title": a.get("title"),
        "source": a.get("source"),
        "license": a.get("license"),
        "attributions": a.get("attributions"),
        "kind": "geom" if v.geometry else "table",
        "locked": False,
        "url": f"{base_url}/user/{v.project}/dataset/{v.name}",
        "version": 3,
        "created_at": _iso(v.created_at),
        "updated_at": _iso(v.updated_at),
        "external_source": {},
        "synchronization": None,
        "uses_builder_features": False,
        "prev_id": None,
        "next_id": None,
        "parent_id": None,
        "transition_options": {},
        "active_child": None,
        "children": [],
        "liked": False,
        "likes": 0,
        "auth_tokens": [],
        "stats": {},
        "related_tables": [],
        "dependent_visualizations_count": 0,
        "dependent_visualizations": [],
        "permission": _permission(v),
        "table": _table(v),
    }


def _base(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def _int(raw: Any, default: int) -> int:
    try:
        return int(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        raise E.InvalidInput(f"not an integer: {raw!r}", code="datasets.invalidParam") from None


async def index(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    if params.get("type", "table") != "table":  # maps: entrepot has none yet
        views: list[DatasetView] = []
        total = 0
    else:
        views, total = await run_in_threadpool(
            lambda: datasets.list_datasets(
                services_of(request),
                call,
                page=_int(params.get("page"), 1),
                per_page=_int(params.get("per_page"), datasets.PAGE_SIZE),
            )
        )
    return JSONResponse(
        {
            "visualizations": [dataset_json(v, _base(request)) for v in views],
            "total_entries": total,
            "total_user_entries": total,
            "total_likes": 0,
            "total_shared": 0,
            "total_locked": 0,
        }
    )


async def show(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    view = await run_in_threadpool(
        datasets.get_dataset, services_of(request), call, request.path_params["viz_id"]
    )
    return JSONResponse(dataset_json(view, _base(request)))


def change_of(params: dict[str, Any]) -> DatasetChange:
    tags = params.get("tags")
    return DatasetChange(
        name=str(params["name"]) if params.get("name") else None,
        privacy=str(params["privacy"]) if params.get("privacy") else None,
        tags=[str(t) for t in tags] if isinstance(tags, list) else None,
        text={
            k: (None if params[k] is None else str(params[k]))
            for k in datasets.TEXT_ATTRIBUTES
            if k in params
        },
    )


async def update(request: Request) -> Response:
    params = await params_of(request)
    call = await caller(request, request.path_params.get("project"), params)
    viz_id = request.path_params["viz_id"]
    if params.get("id") not in (None, viz_id):
        raise E.PermissionDenied("the body's id is not the dataset's", code="datasets.idMismatch")
    view = await run_in_threadpool(
        datasets.update_dataset, services_of(request), call, viz_id, change_of(params)
    )
    return JSONResponse(dataset_json(view, _base(request)))


async def remove(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    await run_in_threadpool(
        datasets.delete_dataset, services_of(request), call, request.path_params["viz_id"]
    )
    return Response(status_code=204)


async def table(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    view = await run_in_threadpool(
        datasets.get_dataset, services_of(request), call, request.path_params["table_id"]
    )
    body = _table(view)
    body["schema"] = [[c, ""] for c in view.columns]
    body["table_visualization"] = dataset_json(view, _base(request))
    body["description"] = view.attributes.get("description")
    return JSONResponse(body)


def router() -> APIRouter:
    r = APIRouter()
    add_routes(
        r,
        [
            ("/api/v1/viz/{viz_id}", show, ["GET"], "A dataset, by id or name"),
            ("/api/v1/viz/{viz_id}", update, ["PUT"], "Change a dataset's privacy, description, tags…"),
            ("/api/v1/viz/{viz_id}", remove, ["DELETE"], "Delete a dataset and its table"),
            ("/api/v1/viz", index, ["GET"], "List datasets (type=table)"),
            ("/api/v1/tables/{table_id}", table, ["GET"], "A dataset's table"),
        ],
        PATH_PARAMETERS,
    )
    return r
