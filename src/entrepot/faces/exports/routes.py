"""The Export API's routes: parse the request, make one call to the core, render the answer.

Every path answers with and without its trailing slash (no redirects).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from entrepot.core import errors as E
from entrepot.core.auth import Principal
from entrepot.core.exports import downloads, service
from entrepot.core.exports.spec import FieldError
from entrepot.core.exports.templates import FIELDS as TEMPLATE_FIELDS
from entrepot.core.exports.templates import TemplateFields
from entrepot.faces.exports.render import (
    envelope,
    render_cancelled,
    render_datasource,
    render_export,
    render_page,
    render_template,
)
from entrepot.faces.http import content_disposition, decode_json, read_body, resolve_principal, services_of
from entrepot.faces.objects_http import object_response

PREFIX = "/data-tools/api/v1"
TAG = "Export API"
MAX_BODY = 1024 * 1024
# what a template shows besides its fields: a client may send them back, they are ignored
TEMPLATE_READ_ONLY = frozenset(
    {"id", "usage_count", "has_filters", "created_at", "updated_at", "format", "owner"}
)


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
        return decode_json(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise FieldError({"body": f"is not valid JSON: {exc}"}) from None


def export_request(body: Any) -> service.ExportRequest | None:
    """An export request's fields; None when the body is no JSON object (the core says so)."""
    if not isinstance(body, Mapping):
        return None
    known = {k: body[k] for k in service.EXPORT_FIELDS if k in body}
    return service.ExportRequest(
        **known, unknown_fields=tuple(sorted(set(body) - set(service.EXPORT_FIELDS)))
    )


def template_fields(body: Any) -> TemplateFields | None:
    """A template request's fields; None when the body is no JSON object (the core says so)."""
    if not isinstance(body, Mapping):
        return None
    known = {k: body[k] for k in TEMPLATE_FIELDS if k in body}
    unknown = tuple(sorted(set(body) - set(TEMPLATE_FIELDS) - TEMPLATE_READ_ONLY))
    return TemplateFields(**known, unknown_fields=unknown)


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
    found = await run_in_threadpool(
        service.list_datasources, services_of(request), principal, request.query_params.get("search")
    )
    items = [render_datasource(ds) for ds in found]
    return envelope("Datasources retrieved successfully", {"datasources": items, "total_count": len(items)})


async def datasource_detail(request: Request, datasource_id: str) -> JSONResponse:
    principal = await _caller(request)
    ds = await run_in_threadpool(service.get_datasource, services_of(request), principal, datasource_id)
    return envelope("Datasource retrieved successfully", render_datasource(ds))


async def create_export(request: Request) -> JSONResponse:
    principal = await _caller(request)
    body = await _json(request)
    export = await run_in_threadpool(
        service.create_export, services_of(request), principal, export_request(body)
    )
    return envelope("Export job created successfully", render_export(export), 201)


async def list_exports(request: Request) -> JSONResponse:
    principal = await _caller(request)
    q = request.query_params
    page = await run_in_threadpool(
        lambda: service.list_exports(
            services_of(request),
            principal,
            page=q.get("page"),
            page_size=q.get("page_size"),
            status=q.get("status") or None,
            format=q.get("format") or None,
            datasource=q.get("datasource") or None,
            search=q.get("search") or None,
        )
    )
    return envelope("Export jobs retrieved successfully", render_page(page))


async def export_detail(request: Request, export_id: str) -> JSONResponse:
    principal = await _caller(request)
    export = await run_in_threadpool(service.get_export, services_of(request), principal, export_id)
    return envelope("Export job retrieved successfully", render_export(export))


async def delete_export(request: Request, export_id: str) -> JSONResponse:
    principal = await _caller(request)
    await run_in_threadpool(service.delete_export, services_of(request), principal, export_id)
    return envelope("Export job deleted successfully", None)


async def cancel_export(request: Request, export_id: str) -> JSONResponse:
    principal = await _caller(request)
    export = await run_in_threadpool(service.cancel_export, services_of(request), principal, export_id)
    return envelope("Export job cancelled successfully", render_cancelled(export))


async def retry_export(request: Request, export_id: str) -> JSONResponse:
    principal = await _caller(request)
    export = await run_in_threadpool(service.retry_export, services_of(request), principal, export_id)
    return envelope("Export job queued for retry", render_export(export))


async def download_export(request: Request, export_id: str) -> Response:
    services = services_of(request)
    q = request.query_params
    if "signature" in q or "expires" in q:
        download = await run_in_threadpool(
            downloads.open_signed_download, services, export_id, q.get("expires"), q.get("signature")
        )
    else:
        principal = await _caller(request)
        download = await run_in_threadpool(downloads.open_download, services, principal, export_id)

    def opener(start: int | None, end: int | None) -> Any:
        return downloads.read(services, download, start, end)

    return await run_in_threadpool(
        object_response,
        download,
        request.headers,
        opener,
        extra_headers={"Content-Disposition": content_disposition(download.file_name)},
        head=request.method == "HEAD",
    )


async def create_template(request: Request) -> JSONResponse:
    principal = await _caller(request)
    body = await _json(request)
    template = await run_in_threadpool(
        service.create_template, services_of(request), principal, template_fields(body)
    )
    return envelope("Export template created successfully", render_template(template), 201)


async def list_templates(request: Request) -> JSONResponse:
    principal = await _caller(request)
    q = request.query_params
    found = await run_in_threadpool(
        lambda: service.list_templates(
            services_of(request),
            principal,
            type=q.get("type") or None,
            format=q.get("format") or None,
            search=q.get("search") or None,
        )
    )
    data = {"templates": [render_template(t) for t in found], "total_count": len(found)}
    return envelope("Export templates retrieved successfully", data)


async def template_detail(request: Request, template_id: str) -> JSONResponse:
    principal = await _caller(request)
    template = await run_in_threadpool(service.get_template, services_of(request), principal, template_id)
    return envelope("Export template retrieved successfully", render_template(template))


async def update_template(request: Request, template_id: str) -> JSONResponse:
    principal = await _caller(request)
    body = await _json(request)
    template = await run_in_threadpool(
        service.update_template, services_of(request), principal, template_id, template_fields(body)
    )
    return envelope("Export template updated successfully", render_template(template))


async def delete_template(request: Request, template_id: str) -> JSONResponse:
    principal = await _caller(request)
    await run_in_threadpool(service.delete_template, services_of(request), principal, template_id)
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
