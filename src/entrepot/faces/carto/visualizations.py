"""``api/v1/viz``: datasets (``type=table``) and maps (``type=derived``): list, show by id or name,
PUT, DELETE, in CARTO's visualization JSON. Without a ``type`` (the SDK's PUT and DELETE) an id
reaches a map or a dataset."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from entrepot.core import datasets, visualizations
from entrepot.core import errors as E
from entrepot.core.datasets import DatasetView
from entrepot.core.visualizations import VisualizationView
from entrepot.faces.carto.datasets import (
    base_of,
    change_of,
    dataset_json,
    int_param,
    permission_json,
    viz_constants,
)
from entrepot.faces.carto.deps import caller, params_of
from entrepot.faces.carto.routing import add_routes
from entrepot.faces.carto.times import iso
from entrepot.faces.http import services_of

PATH_PARAMETERS = {
    "project": "The project's name (CARTO's user name).",
    "viz_id": "The map's or dataset's id, or its name.",
}


def _table_json(d: DatasetView) -> dict[str, Any]:
    return {
        "id": d.id,
        "name": d.name,
        "privacy": d.privacy.upper(),
        "row_count": d.row_count,
        "size": d.size,
        "updated_at": iso(d.updated_at),
        "synchronization": None,
    }


def visualization_json(v: VisualizationView, base_url: str) -> dict[str, Any]:
    a = v.attributes
    return {
        "id": v.id,
        "name": v.name,
        "display_name": a.get("display_name"),
        "type": "derived",
        "privacy": v.privacy.upper(),
        "map_id": v.id,
        "active_layer_id": a.get("active_layer_id"),
        "tags": list(a.get("tags") or []),
        "description": a.get("description"),
        "title": a.get("title"),
        "source": a.get("source"),
        "license": a.get("license"),
        "attributions": a.get("attributions"),
        "kind": "geom",
        "url": f"{base_url}/user/{v.project}/viz/{v.id}/map",
        "created_at": iso(v.created_at),
        "updated_at": iso(v.updated_at),
        "synchronization": None,
        "uses_builder_features": True,
        **viz_constants(),
        "related_tables": [_table_json(t) for t in v.tables],
        "permission": permission_json(v),
        "table": None,
    }


def _json(view: VisualizationView | DatasetView, request: Request, dependent: int = 0) -> dict[str, Any]:
    if isinstance(view, VisualizationView):
        return visualization_json(view, base_of(request))
    return dataset_json(view, base_of(request), dependent)


def _kind(params: dict[str, Any]) -> str | None:
    kind = params.get("type")
    return kind if kind in (visualizations.TABLE, visualizations.DERIVED) else None


async def index(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    page = int_param(params.get("page"), 1)
    per_page = int_param(params.get("per_page"), datasets.PAGE_SIZE)
    services = services_of(request)
    views: list[Any]
    if params.get("type") == visualizations.DERIVED:
        views, total = await run_in_threadpool(
            lambda: visualizations.list_maps(services, call, page=page, per_page=per_page)
        )
    else:
        views, total = await run_in_threadpool(
            lambda: datasets.list_datasets(services, call, page=page, per_page=per_page)
        )
    dependent = int_param(params.get("with_dependent_visualizations"), 0)
    return JSONResponse(
        {
            "visualizations": [_json(v, request, dependent) for v in views],
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
        visualizations.get_visualization,
        services_of(request),
        call,
        request.path_params["viz_id"],
        _kind(params),
    )
    return JSONResponse(_json(view, request, int_param(params.get("with_dependent_visualizations"), 0)))


async def update(request: Request) -> Response:
    params = await params_of(request)
    call = await caller(request, request.path_params.get("project"), params)
    viz_id = request.path_params["viz_id"]
    if params.get("id") not in (None, viz_id):
        raise E.PermissionDenied("the body's id is not the visualization's", code="visualizations.idMismatch")
    view = await run_in_threadpool(
        visualizations.update_visualization, services_of(request), call, viz_id, change_of(params)
    )
    return JSONResponse(_json(view, request))


async def remove(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    await run_in_threadpool(
        visualizations.delete_visualization, services_of(request), call, request.path_params["viz_id"]
    )
    return Response(status_code=204)


def router() -> APIRouter:
    r = APIRouter()
    add_routes(
        r,
        [
            ("/api/v1/viz/{viz_id}", show, ["GET"], "A dataset or a map, by id or name"),
            (
                "/api/v1/viz/{viz_id}",
                update,
                ["PUT"],
                "Change a dataset's or a map's privacy, description, tags…",
            ),
            (
                "/api/v1/viz/{viz_id}",
                remove,
                ["DELETE"],
                "Delete a map, or a dataset (its table and its only maps)",
            ),
            ("/api/v1/viz", index, ["GET"], "List datasets (type=table) or maps (type=derived)"),
        ],
        PATH_PARAMETERS,
    )
    return r
