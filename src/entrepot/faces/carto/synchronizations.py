"""Sync tables: ``api/v1/synchronizations`` (create, list, show, update, delete) and
``api/v1/synchronizations/<id>/sync_now``, in CARTO's JSON (``core/imports/sync.py`` does the work).

A bodiless ``PUT api/v1/synchronizations/<id>`` is what the SDK's ``SyncTableJob.force_sync()``
sends (it never calls ``sync_now``): it is taken as a sync-now request, with ``sync_now``'s
rules, and answered with the sync's JSON. A PUT with a body is an update.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from entrepot.core import errors as E
from entrepot.core.imports import sync as service
from entrepot.core.imports.sync import SyncChange, SyncOptions, SyncView
from entrepot.faces.carto.deps import caller, params_of
from entrepot.faces.carto.imports import CARTO_CODES, UNKNOWN, options_of
from entrepot.faces.carto.routing import add_routes
from entrepot.faces.carto.times import iso
from entrepot.faces.http import services_of

PATH_PARAMETERS = {
    "project": "The project's name (CARTO's user name).",
    "sync_id": "The synchronization's id.",
}
FLAGS = ("type_guessing", "quoted_fields_guessing", "content_guessing")


def sync_json(v: SyncView) -> dict[str, Any]:
    code = None
    if v.state == "failure":
        code = CARTO_CODES.get(v.error_code or "", UNKNOWN)
    return {
        "id": v.id,
        "name": v.name,
        "interval": v.interval,
        "url": v.url,
        "state": v.state,
        "user_id": v.project,
        "created_at": iso(v.created_at),
        "updated_at": iso(v.updated_at),
        "run_at": iso(v.run_at),
        "ran_at": iso(v.ran_at),
        "modified_at": iso(v.modified_at),
        "etag": v.etag,
        "checksum": v.checksum or "",
        "log_id": v.job_id,
        "error_code": code,
        "error_message": v.error_message,
        "retried_times": v.retried_times,
        "service_name": "public_url",
        "service_item_id": v.url,
        "type_guessing": v.type_guessing,
        "quoted_fields_guessing": v.quoted_fields_guessing,
        "content_guessing": v.content_guessing,
        # the dataset's id (the table's uuid): the SDK's DatasetManager.create needs it
        "visualization_id": v.dataset_id,
        "from_external_source": False,
    }


def _interval(raw: Any) -> int | None:
    if raw is None or raw == "":
        return None
    if isinstance(raw, bool):
        raise E.InvalidInput(
            "Validation failed: interval must be a number of seconds", code="synchronizations.badInterval"
        )
    try:
        return int(str(raw).strip())
    except ValueError:
        raise E.InvalidInput(
            "Validation failed: interval must be a number of seconds", code="synchronizations.badInterval"
        ) from None


def _bodiless(request: Request) -> bool:
    length = request.headers.get("content-length")
    return "transfer-encoding" not in request.headers and (length is None or length.strip() == "0")


async def create(request: Request) -> Response:
    params = await params_of(request)
    call = await caller(request, request.path_params.get("project"), params)
    imported = options_of(params)
    options = SyncOptions(
        url=str(params.get("url") or ""),
        interval=_interval(params.get("interval")),
        table_name=imported.table_name,
        type_guessing=imported.type_guessing,
        quoted_fields_guessing=imported.quoted_fields_guessing,
        content_guessing=imported.content_guessing,
    )
    view = await run_in_threadpool(service.create_sync, services_of(request), call, options)
    body = sync_json(view)
    body["data_import"] = {"endpoint": "/api/v1/imports", "item_queue_id": view.job_id}
    return JSONResponse(body)


async def index(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    page = _int(params.get("page"), 1)
    per_page = _int(params.get("per_page"), service.PAGE_SIZE)
    views, total = await run_in_threadpool(
        lambda: service.list_syncs(services_of(request), call, page=page, per_page=per_page)
    )
    return JSONResponse({"synchronizations": [sync_json(v) for v in views], "total_entries": total})


def _int(raw: Any, default: int) -> int:
    try:
        return int(raw) if raw not in (None, "") else default
    except (TypeError, ValueError):
        return default


async def show(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    view = await run_in_threadpool(
        service.get_sync, services_of(request), call, request.path_params["sync_id"]
    )
    return JSONResponse(sync_json(view))


async def update(request: Request) -> Response:
    bodiless = _bodiless(request)
    params = await params_of(request)
    call = await caller(request, request.path_params.get("project"), params)
    flags = options_of(params)
    change = SyncChange(
        interval=_interval(params.get("interval")),
        **{name: getattr(flags, name) if name in params else None for name in FLAGS},
        sync_now=bodiless,
    )
    view = await run_in_threadpool(
        service.update_sync, services_of(request), call, request.path_params["sync_id"], change
    )
    return JSONResponse(sync_json(view))


async def sync_now(request: Request) -> Response:
    params = await params_of(request)
    call = await caller(request, request.path_params.get("project"), params)
    answer = await run_in_threadpool(
        service.sync_now, services_of(request), call, request.path_params["sync_id"]
    )
    return JSONResponse({"enqueued": answer.enqueued, "synchronization_id": answer.id})


async def sync_state(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    view = await run_in_threadpool(
        service.get_sync, services_of(request), call, request.path_params["sync_id"]
    )
    return JSONResponse({"state": view.state})


async def remove(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    await run_in_threadpool(service.delete_sync, services_of(request), call, request.path_params["sync_id"])
    return Response(status_code=204)


def router() -> APIRouter:
    r = APIRouter()
    add_routes(
        r,
        [
            ("/api/v1/synchronizations/{sync_id}/sync_now", sync_now, ["PUT"], "Run a sync table now"),
            ("/api/v1/synchronizations/{sync_id}/sync_now", sync_state, ["GET"], "A sync table's state"),
            ("/api/v1/synchronizations/{sync_id}", show, ["GET"], "Show a sync table"),
            (
                "/api/v1/synchronizations/{sync_id}",
                update,
                ["PUT"],
                "Change a sync table (a bodiless PUT asks for a run now)",
            ),
            (
                "/api/v1/synchronizations/{sync_id}",
                remove,
                ["DELETE"],
                "Delete a sync table (its table stays)",
            ),
            ("/api/v1/synchronizations", create, ["POST"], "Create a sync table from a URL"),
            ("/api/v1/synchronizations", index, ["GET"], "List the sync tables"),
        ],
        PATH_PARAMETERS,
    )
    return r
