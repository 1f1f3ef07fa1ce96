"""Datasets in CARTO's visualization JSON (``dataset_json``; the ``api/v1/viz`` routes that show
them are in ``visualizations.py``) and ``api/v1/tables/<id>``."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from entrepot.core import datasets
from entrepot.core import errors as E
from entrepot.core.datasets import DatasetChange, DatasetView, MapSummary
from entrepot.core.visualizations import VisualizationView
from entrepot.faces.carto.deps import caller
from entrepot.faces.carto.routing import add_routes
from entrepot.faces.carto.synchronizations import sync_json
from entrepot.faces.carto.times import iso
from entrepot.faces.http import services_of

PATH_PARAMETERS = {
    "project": "The project's name (CARTO's user name).",
    "viz_id": "The dataset's id, or its name.",
    "table_id": "The table's id (a dataset's table id).",
}


def permission_json(v: DatasetView | VisualizationView) -> dict[str, Any]:
    """The ``permission`` object of a dataset's or a map's JSON (its owner: the project)."""
    return {
        "id": v.id,
        "owner": {"id": v.project, "username": v.project},
        "entity": {"id": v.id, "type": "vis"},
        "acl": [],
        "created_at": iso(v.created_at),
        "updated_at": iso(v.updated_at),
    }


def _synchronization(v: DatasetView) -> dict[str, Any] | None:
    """The dataset's sync table (CARTO's ``synchronization``), else null."""
    return sync_json(v.synchronization) if v.synchronization is not None else None


def _table(v: DatasetView) -> dict[str, Any]:
    return {
        "id": v.id,
        "name": v.name,
        "privacy": v.privacy.upper(),
        "geometry_types": [],
        "row_count": v.row_count,
        "size": v.size,
        "updated_at": iso(v.updated_at),
        "synchronization": _synchronization(v),
        "permission": permission_json(v),
    }


def map_summary_json(m: MapSummary) -> dict[str, Any]:
    return {
        "id": m.id,
        "name": m.name,
        "type": "derived",
        "privacy": m.privacy.upper(),
        "created_at": iso(m.created_at),
        "updated_at": iso(m.updated_at),
    }


def viz_constants() -> dict[str, Any]:
    """The fields of CARTO's viz JSON entrepot gives the same value for every dataset and map."""
    return {
        "locked": False,
        "version": 3,
        "external_source": {},
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
    }


def dataset_json(v: DatasetView, base_url: str, dependent: int = 0) -> dict[str, Any]:
    """A dataset's JSON; ``dependent``: how many of its maps ``dependent_visualizations`` lists."""
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
        "url": f"{base_url}/user/{v.project}/dataset/{v.name}",
        "created_at": iso(v.created_at),
        "updated_at": iso(v.updated_at),
        "synchronization": _synchronization(v),
        "uses_builder_features": False,
        **viz_constants(),
        "related_tables": [],
        "dependent_visualizations_count": len(v.maps),
        "dependent_visualizations": [map_summary_json(m) for m in v.maps[: max(0, dependent)]],
        "permission": permission_json(v),
        "table": _table(v),
    }


def base_of(request: Request) -> str:
    return str(request.base_url).rstrip("/")


def int_param(raw: Any, default: int) -> int:
    try:
        return int(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        raise E.InvalidInput(f"not an integer: {raw!r}", code="datasets.invalidParam") from None


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


async def table(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    view = await run_in_threadpool(
        datasets.get_dataset, services_of(request), call, request.path_params["table_id"]
    )
    body = _table(view)
    body["schema"] = [[c, ""] for c in view.columns]
    body["table_visualization"] = dataset_json(view, base_of(request))
    body["description"] = view.attributes.get("description")
    return JSONResponse(body)


def router() -> APIRouter:
    r = APIRouter()
    add_routes(
        r,
        [
            ("/api/v1/tables/{table_id}", table, ["GET"], "A dataset's table"),
        ],
        PATH_PARAMETERS,
    )
    return r
