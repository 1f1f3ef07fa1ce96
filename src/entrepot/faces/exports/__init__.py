"""The Export API face (seed 004), under ``/data-tools/api/v1``.

Envelopes: ``{"success": true, "message": ..., "data": ...}``; errors
``{"success": false, "error": "..."}``, with a field → message object for validation errors.
Every path answers with and without its trailing slash (no redirects). The logic is in
:mod:`entrepot.core.exports`; this module parses requests and shapes responses.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from entrepot.core import errors as E
from entrepot.core.auth import Principal
from entrepot.core.catalog import ExportTemplate
from entrepot.core.exports import jobs, templates
from entrepot.core.exports.spec import FieldError
from entrepot.core.objects.objects import ObjectInfo
from entrepot.faces.errors import Problem
from entrepot.faces.http import content_disposition, read_body, resolve_principal, services_of
from entrepot.faces.objects_http import object_response

PREFIX = "/data-tools/api/v1"
TAG = "Export API"
MAX_BODY = 1024 * 1024

__all__ = ["PREFIX", "TAG", "render_error", "router"]


def render_error(request: Request, problem: Problem) -> Response:
    """``{"success": false, "error": ...}``: a field → message object for validation errors."""
    error: Any = problem.message
    if isinstance(problem.error, FieldError):
        error = problem.error.fields
    return JSONResponse(
        {"success": False, "error": error}, status_code=problem.status, headers=problem.headers
    )


def envelope(message: str, data: Any, status: int = 200) -> JSONResponse:
    return JSONResponse({"success": True, "message": message, "data": data}, status_code=status)


def ts(value: datetime | None) -> str | None:
    return value.strftime("%Y-%m-%dT%H:%M:%SZ") if value is not None else None


async def _caller(request: Request) -> Principal:
    principal = await resolve_principal(request)
    if principal.anonymous:
        raise E.Unauthenticated(
            "Authentication credentials were not provided: send your token in the X-StorageApi-Token "
            "header or as Authorization: Bearer <token>",
            code="exports.authenticationRequired",
        )
    return principal


async def _json(request: Request) -> Any:
    raw = await read_body(request, MAX_BODY)
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FieldError({"body": f"is not valid JSON: {exc}"}) from None


# -- rendering -----------------------------------------------------------------------------------


def render_datasource(ds: jobs.Datasource, types: dict[str, str] | None = None) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": ds.table.uuid,
        "name": ds.name,
        "table_id": ds.table_id,
        "columns": list(ds.table.columns),
        "row_count": ds.table.rows_count,
        "created_at": ts(ds.table.created_at),
        "last_change_at": ts(ds.table.last_change_at),
    }
    if types is not None:
        out["column_types"] = {c: types.get(c, "VARCHAR") for c in ds.table.columns}
    return out


def render_export(request: Request, export: jobs.Export) -> dict[str, Any]:
    row, job = export.row, export.job
    status = jobs.STATUS_WORDS.get(export.status, export.status)
    error = None
    if job is not None and job.error and status in ("failed", "cancelled"):
        error = str(job.error.get("message") or "")
    out: dict[str, Any] = {
        "id": row.uuid,
        "status": status,
        "format": row.format,
        "progress": 100 if status == "completed" else (job.progress if job is not None else 0),
        "row_count": row.row_count,
        "file_size": row.file_size,
        "file_name": row.file_name,
        "content_type": row.content_type,
        "created_at": ts(row.created_at),
        "started_at": ts(job.started_at) if job is not None else None,
        "completed_at": ts(job.finished_at) if job is not None else None,
        "error_message": error,
        "datasource": {"id": row.datasource_uuid, "name": row.datasource_name, "table_id": row.table_ident},
        "filters": row.filters,
        "options": row.options,
        "template": {"id": export.template_uuid, "name": export.template_name}
        if export.template_uuid
        else None,
        "owner": row.owner,
        "expires_at": ts(row.expires_at),
        "file_expired": row.file_expired_at is not None,
        "download_url": None,
        "download_url_expires_at": None,
    }
    signed = jobs.download_url(services_of(request), export)
    if signed is not None:
        out["download_url"], expires = signed
        out["download_url_expires_at"] = ts(expires)
    return out


def render_template(row: ExportTemplate) -> dict[str, Any]:
    return {
        "id": row.uuid,
        "name": row.name,
        "description": row.description,
        "template_type": row.template_type,
        "format": row.format,
        "configuration": row.configuration,
        "is_active": row.is_active,
        "usage_count": row.usage_count,
        "has_filters": templates.has_filters(row),
        "owner": row.owner,
        "created_at": ts(row.created_at),
        "updated_at": ts(row.updated_at),
    }


# -- routes --------------------------------------------------------------------------------------


def _route(
    r: APIRouter, path: str, methods: list[str], endpoint: Callable[..., Any], summary: str, **kw: Any
) -> None:
    """``path`` with and without its trailing slash, one route per method (unique operation ids)."""
    slashed = path.rstrip("/") + "/"
    for method in methods:
        name = f"{endpoint.__name__}_{method.lower()}"
        documented = method != "HEAD"
        r.add_api_route(
            PREFIX + slashed,
            endpoint,
            methods=[method],
            summary=summary,
            operation_id=name,
            include_in_schema=documented,
            **kw,
        )
        r.add_api_route(
            PREFIX + slashed.rstrip("/"),
            endpoint,
            methods=[method],
            include_in_schema=False,
            operation_id=f"{name}_noslash",
            **kw,
        )


async def list_datasources(request: Request) -> JSONResponse:
    principal = await _caller(request)
    services = services_of(request)
    found = await run_in_threadpool(
        jobs.list_datasources, services, principal, request.query_params.get("search")
    )
    items = [render_datasource(ds) for ds in found]
    return envelope("Datasources retrieved successfully", {"datasources": items, "total_count": len(items)})


async def datasource_detail(request: Request, datasource_id: str) -> JSONResponse:
    principal = await _caller(request)
    services = services_of(request)

    def load() -> dict[str, Any]:
        ds = jobs.get_datasource(services, principal, datasource_id)
        return render_datasource(ds, jobs.describe(services, ds))

    return envelope("Datasource retrieved successfully", await run_in_threadpool(load))


async def create_export(request: Request) -> JSONResponse:
    principal = await _caller(request)
    body = await _json(request)
    export = await run_in_threadpool(jobs.create, services_of(request), principal, body)
    return envelope("Export job created successfully", render_export(request, export), 201)


async def list_exports(request: Request) -> JSONResponse:
    principal = await _caller(request)
    q = request.query_params
    page = await run_in_threadpool(
        jobs.list_exports,
        services_of(request),
        principal,
        page=q.get("page"),
        page_size=q.get("page_size"),
        status=q.get("status") or None,
        format=q.get("format") or None,
        datasource=q.get("datasource") or None,
        search=q.get("search") or None,
    )
    data = {
        "export_jobs": [render_export(request, e) for e in page.items],
        "pagination": {
            "total_count": page.total,
            "page_count": page.page_count,
            "current_page": page.page,
            "has_next": page.page * page.page_size < page.total,
            "has_previous": page.page > 1,
            "page_size": page.page_size,
        },
    }
    return envelope("Export jobs retrieved successfully", data)


async def export_detail(request: Request, export_id: str) -> JSONResponse:
    principal = await _caller(request)
    export = await run_in_threadpool(jobs.get, services_of(request), principal, export_id)
    return envelope("Export job retrieved successfully", render_export(request, export))


async def delete_export(request: Request, export_id: str) -> JSONResponse:
    principal = await _caller(request)
    await run_in_threadpool(jobs.delete, services_of(request), principal, export_id)
    return envelope("Export job deleted successfully", None)


async def cancel_export(request: Request, export_id: str) -> JSONResponse:
    principal = await _caller(request)
    export = await run_in_threadpool(jobs.cancel, services_of(request), principal, export_id)
    job = export.job
    data = {
        "id": export.row.uuid,
        "status": jobs.STATUS_WORDS.get(export.status, export.status),
        "completed_at": ts(job.finished_at) if job is not None else None,
    }
    return envelope("Export job cancelled successfully", data)


async def retry_export(request: Request, export_id: str) -> JSONResponse:
    principal = await _caller(request)
    export = await run_in_threadpool(jobs.retry, services_of(request), principal, export_id)
    return envelope("Export job queued for retry", render_export(request, export))


async def download_export(request: Request, export_id: str) -> Response:
    services = services_of(request)
    q = request.query_params
    if "signature" in q or "expires" in q:
        download = await run_in_threadpool(
            jobs.open_signed_download, services, export_id, q.get("expires"), q.get("signature")
        )
    else:
        principal = await _caller(request)
        download = await run_in_threadpool(jobs.open_download, services, principal, export_id)
    info = ObjectInfo(
        space="exports",
        key=download.file_name,
        size=download.size,
        etag=f"{download.export.uuid.replace('-', '')}{download.size:x}",
        content_type=download.content_type,
        modified_at=download.modified,
        blob_key=download.blob_key,
    )

    def opener(start: int | None, end: int | None) -> Any:
        return services.blobs.open(download.blob_key, start, end)

    return await run_in_threadpool(
        object_response,
        info,
        request.headers,
        opener,
        meta_prefix="x-export-meta-",
        extra_headers={"Content-Disposition": content_disposition(download.file_name)},
        head=request.method == "HEAD",
    )


async def create_template(request: Request) -> JSONResponse:
    principal = await _caller(request)
    body = await _json(request)
    row = await run_in_threadpool(templates.create, services_of(request), principal, body)
    return envelope("Export template created successfully", render_template(row), 201)


async def list_templates(request: Request) -> JSONResponse:
    principal = await _caller(request)
    q = request.query_params
    rows = await run_in_threadpool(
        templates.list_templates,
        services_of(request),
        principal,
        type=q.get("type") or None,
        format=q.get("format") or None,
        search=q.get("search") or None,
    )
    data = {"templates": [render_template(r) for r in rows], "total_count": len(rows)}
    return envelope("Export templates retrieved successfully", data)


async def template_detail(request: Request, template_id: str) -> JSONResponse:
    principal = await _caller(request)
    row = await run_in_threadpool(templates.get, services_of(request), principal, template_id)
    return envelope("Export template retrieved successfully", render_template(row))


async def update_template(request: Request, template_id: str) -> JSONResponse:
    principal = await _caller(request)
    body = await _json(request)
    row = await run_in_threadpool(templates.update, services_of(request), principal, template_id, body)
    return envelope("Export template updated successfully", render_template(row))


async def delete_template(request: Request, template_id: str) -> JSONResponse:
    principal = await _caller(request)
    await run_in_threadpool(templates.delete, services_of(request), principal, template_id)
    return envelope("Export template deleted successfully", None)


def router() -> APIRouter:
    r = APIRouter(tags=[TAG])
    _route(r, "/datasources/", ["GET"], list_datasources, "List the tables you may export")
    _route(
        r, "/datasources/{datasource_id}/", ["GET"], datasource_detail, "A datasource with its column types"
    )
    _route(r, "/exports/", ["POST"], create_export, "Create an export job", status_code=201)
    _route(r, "/exports/", ["GET"], list_exports, "List your export jobs")
    _route(r, "/exports/{export_id}/", ["GET"], export_detail, "Export job detail")
    _route(r, "/exports/{export_id}/", ["DELETE"], delete_export, "Delete an export job and its file")
    _route(r, "/exports/{export_id}/cancel/", ["POST"], cancel_export, "Cancel a pending or processing job")
    _route(r, "/exports/{export_id}/retry/", ["POST"], retry_export, "Retry a failed or cancelled job")
    _route(
        r, "/exports/{export_id}/download/", ["GET", "HEAD"], download_export, "Download the exported file"
    )
    _route(r, "/export-templates/", ["POST"], create_template, "Create an export template", status_code=201)
    _route(r, "/export-templates/", ["GET"], list_templates, "List export templates")
    _route(r, "/export-templates/{template_id}/", ["GET"], template_detail, "Export template detail")
    _route(
        r, "/export-templates/{template_id}/", ["PUT", "PATCH"], update_template, "Update an export template"
    )
    _route(r, "/export-templates/{template_id}/", ["DELETE"], delete_template, "Delete an export template")
    return r
