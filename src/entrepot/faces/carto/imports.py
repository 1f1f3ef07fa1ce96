"""Import API routes: ``api/v1/imports`` (create from a multipart ``file`` or a ``url``, list) and
``api/v1/imports/<id>`` (show), in CARTO's JSON; failures carry CARTO's ``error_code`` numbers."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse, Response

from entrepot.core.imports import service
from entrepot.core.imports.service import ImportOptions, ImportSource, ImportView
from entrepot.faces.carto.deps import caller, params_of
from entrepot.faces.carto.routing import add_routes
from entrepot.faces.carto.times import iso
from entrepot.faces.http import services_of

# the core's import error codes -> CARTO's (cartodb lib/cartodb/import_error_codes.rb)
CARTO_CODES: dict[str, int] = {
    "imports.unsupportedFormat": 1002,
    "imports.badArchive": 1003,
    "imports.badSpreadsheet": 1004,
    "imports.emptyFile": 1005,
    "imports.passwordProtected": 1018,
    "imports.tooManyLayers": 1019,
    "imports.downloadFailed": 1001,
    "imports.urlNotFound": 1100,
    "imports.urlForbidden": 1101,
    "imports.urlRefused": 1102,
    "imports.unreadable": 2001,
    "imports.tooManyColumns": 2004,
    "imports.duplicatedColumn": 2005,
    "imports.brokenEncoding": 2006,
    "imports.tooLarge": 6666,
    "imports.inflatedTooLarge": 6666,
}
UNKNOWN = 99999
# CARTO's titles, advice and source of each code
CARTO_TEXTS: dict[int, tuple[str, str, str]] = {
    1001: (
        "Download error",
        "The remote URL returned an error. Please verify your file is available at that URL.",
        "user",
    ),
    1002: ("Unsupported/Unrecognized file type", "Check the list of supported files.", "user"),
    1003: (
        "Decompression error",
        "The archive you uploaded didn't seem to unpack properly. Try recreating it from the original files.",
        "user",
    ),
    1004: ("XLS/XLSX Error", "The XLS/XLSX archive could not be opened. Try exporting it into CSV.", "user"),
    1005: (
        "Empty file",
        "The file appears to have no processable information. Double check that the file is indeed correct.",
        "user",
    ),
    1018: ("File is password protected", "Remove the password protection and try again.", "user"),
    1019: ("Too Many Layers", "The file has too many layers.", "user"),
    1100: ("Download file not found", "Provided URL doesn't return a file (error 404).", "user"),
    1101: (
        "Forbidden file URL",
        "Provided URL returns authentication error. Provide a valid, public URL.",
        "user",
    ),
    1102: (
        "Unknown server URL",
        "Provided URL can't be resolved to a known server, or is behind a private network.",
        "user",
    ),
    2001: ("Unable to load data", "We couldn't load data from your file into the database.", "user"),
    2004: (
        "Too many columns",
        "Data has too many columns. Delete the columns you're not interested in, or split the file.",
        "user",
    ),
    2005: ("Duplicated column", "Your file has the same header for two or more columns.", "user"),
    2006: (
        "Encoding error",
        "There was a problem reading your file: save it with encoding UTF-8 and try again.",
        "user",
    ),
    6666: ("Dataset too big", "The dataset you tried to import is too big and cannot be processed.", "user"),
    UNKNOWN: ("Unknown", "Sorry, something went wrong and we're not sure what.", "cartodb"),
}
PATH_PARAMETERS = {
    "project": "The project's name (CARTO's user name).",
    "import_id": "The import's id (item_queue_id).",
}


def _flag(params: dict[str, Any], name: str, default: bool) -> bool:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    if isinstance(raw, bool):
        return raw
    return str(raw).strip().lower() == "true" if not default else str(raw).strip().lower() != "false"


def options_of(params: dict[str, Any]) -> ImportOptions:
    name = params.get("table_name")
    return ImportOptions(
        table_name=str(name) if name else None,
        privacy=str(params.get("privacy") or "private").lower(),
        create_vis=_flag(params, "create_vis", False),
        type_guessing=_flag(params, "type_guessing", True),
        quoted_fields_guessing=_flag(params, "quoted_fields_guessing", True),
        content_guessing=_flag(params, "content_guessing", False),
    )


def import_json(v: ImportView) -> dict[str, Any]:
    table = v.tables[0] if v.tables else None
    body: dict[str, Any] = {
        "id": v.id,
        "item_queue_id": v.id,
        "queue_id": v.id,
        "user_id": v.project,
        "state": v.state,
        "table_id": table.id if table else None,
        "table_name": table.name if table else None,
        # the dataset's id (entrepot: the table's): the SDK then needs no api/v1/tables call
        "visualization_id": table.id if table else None,
        "derived_visualization_id": v.visualization_id,
        "error_code": None,
        "get_error_text": None,
        "display_name": v.display_name,
        "data_type": v.data_type,
        "tables_created_count": len(v.tables),
        "synchronization_id": None,
        "type_guessing": v.options.type_guessing,
        "quoted_fields_guessing": v.options.quoted_fields_guessing,
        "content_guessing": v.options.content_guessing,
        "create_visualization": v.options.create_vis,
        "user_defined_limits": "{}",
        "original_url": v.original_url,
        "warnings": None,
        "is_raster": False,
        "created_at": iso(v.created_at),
        "updated_at": iso(v.updated_at),
    }
    if v.finished:
        body["success"] = v.state == "complete"
    if v.state == "failure":
        code = CARTO_CODES.get(v.error_code or "", UNKNOWN)
        title, advice, source = CARTO_TEXTS[code]
        message = v.error_message or title
        body["error_code"] = code
        body["get_error_text"] = {"title": title, "what_about": f"{message}. {advice}", "source": source}
    return body


async def create(request: Request) -> Response:
    params = await params_of(request)
    upload: UploadFile | None = None
    if request.headers.get("content-type", "").lower().startswith("multipart/form-data"):
        part = (await request.form()).get("file")
        upload = part if isinstance(part, UploadFile) else None
    call = await caller(request, request.path_params.get("project"), params)
    url = params.get("url")
    source = ImportSource(
        upload=upload.file if upload is not None else None,
        filename=upload.filename if upload is not None else None,
        url=str(url) if url and upload is None else None,
    )
    view = await run_in_threadpool(
        service.create_import, services_of(request), call, source, options_of(params)
    )
    return JSONResponse({"item_queue_id": view.id, "success": True})


async def show(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    view = await run_in_threadpool(
        service.get_import, services_of(request), call, request.path_params["import_id"]
    )
    return JSONResponse(import_json(view))


async def index(request: Request) -> Response:
    params = dict(request.query_params)
    call = await caller(request, request.path_params.get("project"), params)
    views = await run_in_threadpool(service.list_imports, services_of(request), call)
    return JSONResponse({"imports": [v.id for v in views], "success": True})


def router() -> APIRouter:
    r = APIRouter()
    add_routes(
        r,
        [
            ("/api/v1/imports/{import_id}", show, ["GET"], "Show an import (CARTO Import API)"),
            ("/api/v1/imports", create, ["POST"], "Import a file or a URL as new datasets"),
            ("/api/v1/imports", index, ["GET"], "List the unfinished imports"),
        ],
        PATH_PARAMETERS,
    )
    return r
