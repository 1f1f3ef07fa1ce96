"""SQL API routes: ``api/v2/sql`` (queries), ``…/sql/job`` (batch), ``…/sql/copyfrom`` and ``…/sql/copyto``."""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response, StreamingResponse

from entrepot.core import errors as E
from entrepot.core.services import Services
from entrepot.core.sql import service
from entrepot.core.sql.results import Loaded, Page
from entrepot.core.sql.service import Caller
from entrepot.faces.carto.batch import job_json
from entrepot.faces.carto.deps import caller, params_of
from entrepot.faces.carto.formats import (
    FILE_FORMATS,
    FORMATS,
    check_format,
    csv_chunks,
    geojson_chunks,
    json_chunks,
)
from entrepot.faces.http import body_chunks, content_disposition, read_body, services_of

PROJECT_PREFIXES = ("/user/{project}", "/u/{project}", "")
VERSIONS = ("v2", "v1")
FILE_CHUNK = 1024 * 1024
# the endpoints read path parameters from the request, so the OpenAPI document declares them here
PATH_PARAMETERS = {
    "project": "The project's name (CARTO's user name).",
    "job_id": "The batch job's id, as returned when it was created.",
    "table": "The table's name.",
}


def _project(request: Request) -> str | None:
    return request.path_params.get("project")


def _int(params: dict[str, Any], name: str, default: int | None, *, low: int = 0) -> int | None:
    raw = params.get(name)
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise E.InvalidInput(f"{name} must be an integer, not {raw!r}", code="sql.invalidParam") from None
    if value < low:
        raise E.InvalidInput(f"{name} must be at least {low}", code="sql.invalidParam")
    return value


# -- queries ---------------------------------------------------------------------------------


def _page(params: dict[str, Any]) -> Page | None:
    size = _int(params, "rows_per_page", None, low=1)
    if size is None:
        return None
    return Page(number=_int(params, "page", 0) or 0, size=size)


def _open_query(
    services: Services, stack: ExitStack, call: Caller, q: str, fmt: str, params: dict[str, Any]
) -> Iterator[bytes]:
    """Run the query and render it; returns the chunks with the first one already made (errors surface)."""
    skip = {s.strip() for s in str(params.get("skipfields") or "").split(",") if s.strip()}
    dp = _int(params, "dp", 6) or 0
    page = _page(params)
    chunks: Iterator[bytes]
    if fmt in FILE_FORMATS:
        file_format: service.FileFormat = "parquet" if fmt == "parquet" else "xlsx"
        result = stack.enter_context(service.query_file(services, call, q, file_format, page=page))
        chunks = _file_chunks(result.path)
    else:
        spec = service.Query(q, page=page, geojson=fmt == "geojson", bounded=fmt != "csv")
        rows = stack.enter_context(service.query(services, call, spec))
        if fmt == "json":
            chunks = json_chunks(rows, skip=skip)
        elif fmt == "geojson":
            chunks = geojson_chunks(rows, skip=skip, dp=dp)
        else:
            chunks = csv_chunks(rows, skip=skip)
    first = next(chunks, b"")
    return _chain(first, chunks, stack)


def _file_chunks(path: Path) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(FILE_CHUNK):
            yield chunk


def _chain(first: bytes, rest: Iterator[bytes], stack: ExitStack) -> Iterator[bytes]:
    try:
        yield first
        yield from rest
    finally:
        stack.close()


async def _begin(request: Request) -> tuple[Services, dict[str, Any], Caller]:
    """The services, the merged parameters and the caller of a request."""
    params = await params_of(request)
    return services_of(request), params, await caller(request, _project(request), params)


async def query(request: Request) -> Response:
    services, params, call = await _begin(request)
    q = params.get("q")
    if not isinstance(q, str) or not q.strip():
        raise E.InvalidInput("You must indicate a sql query", code="sql.missingQuery")
    fmt = check_format(params.get("format"))
    filename = params.get("filename")

    def start() -> Iterator[bytes]:
        stack = ExitStack()
        try:
            return _open_query(services, stack, call, q, fmt, params)
        except BaseException:
            stack.close()
            raise

    chunks = await run_in_threadpool(start)
    media, ext = FORMATS[fmt]
    headers = {}
    if params.get("format") or filename:
        headers["Content-Disposition"] = content_disposition(f"{filename or 'cartodb-query'}.{ext}")
    else:
        headers["Content-Disposition"] = "inline"
    return StreamingResponse(chunks, media_type=media, headers=headers)


# -- batch jobs ------------------------------------------------------------------------------


def _query_of(params: dict[str, Any]) -> Any:
    if "query" not in params:
        raise E.InvalidInput("You must indicate a valid SQL", code="sql.batch.missingQuery")
    return params["query"]


async def job_create(request: Request) -> Response:
    services, params, call = await _begin(request)
    job = await run_in_threadpool(service.create_batch, services, call, _query_of(params))
    return JSONResponse(job_json(job, call.project), status_code=201)


async def job_read(request: Request) -> Response:
    services, _params, call = await _begin(request)
    job = await run_in_threadpool(service.batch_job, services, call, request.path_params["job_id"])
    return JSONResponse(job_json(job, call.project))


async def job_update(request: Request) -> Response:
    services, params, call = await _begin(request)
    job_id = request.path_params["job_id"]
    job = await run_in_threadpool(service.update_batch, services, call, job_id, _query_of(params))
    return JSONResponse(job_json(job, call.project))


async def job_cancel(request: Request) -> Response:
    services, _params, call = await _begin(request)
    job = await run_in_threadpool(service.cancel_batch, services, call, request.path_params["job_id"])
    return JSONResponse(job_json(job, call.project))


# -- COPY --------------------------------------------------------------------------------------


async def copy_from(request: Request) -> Response:
    services = services_of(request)
    params = dict(request.query_params)  # the body is the data
    try:
        call = await caller(request, _project(request), params)
    except E.EntrepotError:
        await _drain(request, services.settings.sql_max_copy_bytes)
        raise
    gzip = request.headers.get("content-encoding", "").strip().lower() in ("gzip", "x-gzip")

    def load() -> Loaded:
        chunks = body_chunks(request)
        try:
            return service.copy_from(services, call, params.get("q") or "", chunks, gzip=gzip)
        except E.EntrepotError:
            # answer only after the client has sent everything: closing early turns the message
            # into a connection error on the client's side
            drained = 0
            with contextlib.suppress(Exception):
                for chunk in chunks:
                    drained += len(chunk)
                    if drained > services.settings.sql_max_copy_bytes:
                        break
            raise

    loaded = await run_in_threadpool(load)
    return JSONResponse({"time": round(loaded.elapsed, 3), "total_rows": loaded.rows})


async def _drain(request: Request, limit: int) -> None:
    with contextlib.suppress(Exception):
        await read_body(request, limit)


async def copy_to(request: Request) -> Response:
    services, params, call = await _begin(request)
    q = params.get("q")
    chunks = await run_in_threadpool(service.copy_to, services, call, q if isinstance(q, str) else "")
    filename = params.get("filename") or "carto-sql-copyto.dmp"
    return StreamingResponse(
        chunks,
        media_type="application/octet-stream",
        headers={"Content-Disposition": content_disposition(str(filename))},
    )


# -- privacy (entrepot extension; CARTO sets it through its datasets API) ------------------------


async def privacy_set(request: Request) -> Response:
    services, params, call = await _begin(request)
    table = request.path_params["table"]
    change = service.TablePrivacy(table, str(params.get("privacy") or "").lower())
    done = await run_in_threadpool(service.set_table_privacy, services, call, change)
    return JSONResponse({"table": done.table, "privacy": done.privacy})


async def privacy_get(request: Request) -> Response:
    services, _params, call = await _begin(request)
    table = request.path_params["table"]
    found = await run_in_threadpool(service.table_privacy, services, call, table)
    return JSONResponse({"table": found.table, "privacy": found.privacy})


# -- routing -------------------------------------------------------------------------------------


def _path_parameters(names: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "name": n,
            "in": "path",
            "required": True,
            "description": PATH_PARAMETERS[n],
            "schema": {"type": "string"},
        }
        for n in names
    ]


def router() -> APIRouter:
    r = APIRouter()
    routes: list[tuple[str, Any, list[str], str]] = [
        ("/sql/job/{job_id}", job_read, ["GET"], "Read a batch job"),
        ("/sql/job/{job_id}", job_update, ["PUT"], "Change the query of a pending batch job"),
        ("/sql/job/{job_id}", job_cancel, ["DELETE"], "Cancel a batch job"),
        ("/sql/job", job_create, ["POST"], "Create a batch job"),
        ("/sql/copyfrom", copy_from, ["POST"], "COPY … FROM STDIN: load a streamed CSV or text body"),
        ("/sql/copyto", copy_to, ["GET", "POST"], "COPY … TO STDOUT: stream a query's rows"),
        ("/sql/tables/{table}/privacy", privacy_get, ["GET"], "A table's privacy (entrepot extension)"),
        ("/sql/tables/{table}/privacy", privacy_set, ["PUT"], "Make a table private, public or link-shared"),
        ("/sql", query, ["GET", "POST"], "Run SQL"),
    ]
    for prefix in PROJECT_PREFIXES:
        for version in VERSIONS:
            for tail, endpoint, methods, summary in routes:
                path = f"{prefix}/api/{version}{tail}"
                documented = prefix == "/user/{project}" and version == "v2"
                names = re.findall(r"{(\w+)}", path)
                for variant in (path, path + "/"):
                    for method in methods:  # one route per method: unique OpenAPI operation ids
                        r.add_api_route(
                            variant,
                            endpoint,
                            methods=[method],
                            summary=summary,
                            include_in_schema=documented and variant == path,
                            name=f"carto.{endpoint.__name__}.{method.lower()}",
                            operation_id=f"carto_{endpoint.__name__}_{method.lower()}"
                            if documented
                            else None,
                            openapi_extra={"parameters": _path_parameters(names)} if documented else None,
                        )
    return r
