"""Visualization exports: ``api/v3/visualization_exports`` (create: ``visualization_id`` in the query
or the body), ``…/<id>`` (poll) and ``…/<id>/download`` (the ``.carto`` file), in CARTO's JSON."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import iterate_in_threadpool, run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from entrepot.core import viz_exports
from entrepot.core.viz_exports import VizExportDownload, VizExportView
from entrepot.faces.carto.deps import caller, params_of
from entrepot.faces.carto.routing import add_routes
from entrepot.faces.carto.times import iso
from entrepot.faces.http import content_disposition, services_of

PATH_PARAMETERS = {
    "project": "The project's name (CARTO's user name).",
    "export_id": "The export's id.",
}
CHUNK = 1024 * 1024


def export_json(v: VizExportView, request: Request) -> dict[str, Any]:
    base = str(request.base_url).rstrip("/")
    return {
        "id": v.id,
        "visualization_id": v.visualization_id,
        "user_id": v.project,
        "state": v.state,
        "url": f"{base}/user/{v.project}/api/v3/visualization_exports/{v.id}/download"
        if v.complete
        else None,
        "created_at": iso(v.created_at),
        "updated_at": iso(v.updated_at),
    }


async def create(request: Request) -> Response:
    params = await params_of(request)
    call = await caller(request, request.path_params.get("project"), params)
    viz_id = params.get("visualization_id")
    view = await run_in_threadpool(
        viz_exports.create_export, services_of(request), call, str(viz_id) if viz_id else None
    )
    return JSONResponse(export_json(view, request), status_code=201)


async def show(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    view = await run_in_threadpool(
        viz_exports.get_export, services_of(request), call, request.path_params["export_id"]
    )
    return JSONResponse(export_json(view, request))


def _chunks(download: VizExportDownload) -> Iterator[bytes]:
    try:
        while chunk := download.stream.read(CHUNK):
            yield chunk
    finally:
        download.stream.close()


async def download(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    file = await run_in_threadpool(
        viz_exports.open_download, services_of(request), call, request.path_params["export_id"]
    )
    return StreamingResponse(
        iterate_in_threadpool(_chunks(file)),
        media_type="application/zip",
        headers={
            "Content-Length": str(file.size),
            "Content-Disposition": content_disposition(file.file_name),
        },
    )


def router() -> APIRouter:
    r = APIRouter()
    add_routes(
        r,
        [
            ("/api/v3/visualization_exports", create, ["POST"], "Export a map or a dataset as a .carto file"),
            ("/api/v3/visualization_exports/{export_id}", show, ["GET"], "A visualization export"),
            ("/api/v3/visualization_exports/{export_id}/download", download, ["GET"], "The .carto file"),
        ],
        PATH_PARAMETERS,
    )
    return r
