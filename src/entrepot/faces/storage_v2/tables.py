"""Keboola tables: list, detail, import, delete, primary key, optimize, metadata; default branch."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from entrepot.core.auth import Principal
from entrepot.core.errors import NotFound
from entrepot.core.tables import service as tables
from entrepot.faces.http import services_of
from entrepot.faces.storage_v2.deps import PREFIX, caller
from entrepot.faces.storage_v2.jobs import job_response
from entrepot.faces.storage_v2.params import Params, keboola_params
from entrepot.faces.storage_v2.render import ts
from entrepot.faces.storage_v2.render_tables import metadata_json, table_json
from entrepot.faces.storage_v2.table_params import load_options, load_source, parse_after, run_id

router = APIRouter(prefix=PREFIX)  # full paths: metrics and logs name the real route


@router.get("/tables", summary="List tables")
def list_tables(request: Request, principal: Principal = Depends(caller)) -> list[dict[str, Any]]:
    services = services_of(request)
    return [table_json(services, v) for v in tables.list_tables(services, principal)]


@router.get("/tables/{table_id}", summary="Table detail")
def table_detail(table_id: str, request: Request, principal: Principal = Depends(caller)) -> dict[str, Any]:
    services = services_of(request)
    return table_json(services, tables.table_detail(services, principal, table_id))


@router.post("/tables/{table_id}", summary="Update a table: primaryKey (synchronous, seed 000)")
def update_table(
    table_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> dict[str, Any]:
    services = services_of(request)
    primary_key = parse_after(
        lambda: tables.check_table(services, principal, table_id, "write"),
        lambda: params.list("primaryKey") if "primaryKey" in params else None,
    )
    # displayName is accepted (Keboola clients send it) and the name stays the display name
    display_name = str(params.get("displayName")) if "displayName" in params else None
    view = tables.update_table(
        services, principal, table_id, primary_key=primary_key, display_name=display_name
    )
    return table_json(services, view)


router.add_api_route(
    "/tables/{table_id}",
    update_table,
    methods=["PUT"],
    operation_id="update_table_put",
    summary="Update a table: primaryKey (synchronous)",
)


@router.delete("/tables/{table_id}", summary="Delete a table (204, or a job with async=true)")
def delete_table(
    table_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> Response:
    services = services_of(request)
    run_async = parse_after(
        lambda: tables.check_table(services, principal, table_id, "write"), lambda: params.bool("async")
    )
    job = tables.delete_table(services, principal, table_id, run_async=run_async, run_id=run_id(request))
    return Response(status_code=204) if job is None else job_response(services, job)


@router.post("/tables/{table_id}/import-async", summary="Load CSV into a table (job)")
def import_table(
    table_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> JSONResponse:
    services = services_of(request)
    # primaryKey[] is ignored here: kbcstorage's tables.load sends its columns under that name (C11)
    source, options = parse_after(
        lambda: tables.check_table(services, principal, table_id, "write"),
        lambda: (load_source(params), load_options(params, incremental=params.bool("incremental"))),
    )
    job = tables.import_table(services, principal, table_id, source, options, run_id=run_id(request))
    return job_response(services, job)


def _add_primary_key(
    table_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> JSONResponse:
    services = services_of(request)
    columns, skip_check = parse_after(
        lambda: tables.check_table(services, principal, table_id, "write"),
        lambda: (params.list("columns") or params.list("primaryKey"), params.bool("skipDuplicatesCheck")),
    )
    job = tables.add_primary_key(
        services, principal, table_id, columns, skip_duplicates_check=skip_check, run_id=run_id(request)
    )
    return job_response(services, job)


def _remove_primary_key(
    table_id: str, request: Request, principal: Principal = Depends(caller)
) -> JSONResponse:
    services = services_of(request)
    job = tables.remove_primary_key(services, principal, table_id, run_id=run_id(request))
    return job_response(services, job)


def _optimize(table_id: str, request: Request, principal: Principal = Depends(caller)) -> JSONResponse:
    services = services_of(request)
    return job_response(
        services, tables.optimize_table(services, principal, table_id, run_id=run_id(request))
    )


for _suffix in ("", "/"):
    router.add_api_route(
        "/tables/{table_id}/primary-key" + _suffix,
        _add_primary_key,
        methods=["POST"],
        status_code=202,
        summary="Add a primary key (job)",
        include_in_schema=not _suffix,
    )
    router.add_api_route(
        "/tables/{table_id}/primary-key" + _suffix,
        _remove_primary_key,
        methods=["DELETE"],
        status_code=202,
        summary="Remove the primary key (job)",
        include_in_schema=not _suffix,
    )
    router.add_api_route(
        "/tables/{table_id}/optimize" + _suffix,
        _optimize,
        methods=["POST"],
        status_code=202,
        summary="Compact a table's files (job)",
        include_in_schema=not _suffix,
    )


# -- metadata ---------------------------------------------------------------------------------


@router.get("/tables/{table_id}/metadata", summary="Table metadata")
def list_metadata(
    table_id: str, request: Request, principal: Principal = Depends(caller)
) -> list[dict[str, Any]]:
    services = services_of(request)
    return [metadata_json(m) for m in tables.list_metadata(services, principal, table_id)]


@router.post("/tables/{table_id}/metadata", status_code=201, summary="Upsert table and column metadata")
def post_metadata(
    table_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> JSONResponse:
    services = services_of(request)
    table_rows, column_rows = tables.upsert_metadata(
        services,
        principal,
        table_id,
        params.str("provider"),
        params.get("metadata"),
        params.get("columnsMetadata"),
    )
    body = {
        "metadata": [metadata_json(m) for m in table_rows],
        "columnsMetadata": {c: [metadata_json(m) for m in rows] for c, rows in column_rows.items()},
    }
    return JSONResponse(body, status_code=201)


@router.delete(
    "/tables/{table_id}/metadata/{metadata_id}", status_code=204, summary="Delete a metadata entry"
)
def delete_metadata(
    table_id: str, metadata_id: str, request: Request, principal: Principal = Depends(caller)
) -> Response:
    tables.delete_metadata(services_of(request), principal, table_id, metadata_id)
    return Response(status_code=204)


# -- the default branch -----------------------------------------------------------------------

_DEFAULT_BRANCH_ID = 1


def _check_branch(branch_id: str) -> None:
    if branch_id not in ("default", str(_DEFAULT_BRANCH_ID)):
        raise NotFound(
            f"branch {branch_id} not found; entrepot has only the default branch",
            code="storage.branches.notFound",
        )


@router.get("/branch/{branch_id}/metadata", summary="Branch metadata (always empty)")
def branch_metadata(branch_id: str, principal: Principal = Depends(caller)) -> list[dict[str, Any]]:
    _check_branch(branch_id)
    return []


def _branch_json(request: Request, principal: Principal) -> dict[str, Any]:
    from entrepot.core.projects import get_project

    services = services_of(request)
    project = get_project(services.catalog, principal.project_id or 0)
    return {
        "id": _DEFAULT_BRANCH_ID,
        "name": "Main",
        "description": "",
        "created": ts(project.created_at),
        "isDefault": True,
        "creatorToken": None,
    }


@router.get("/dev-branches", summary="Development branches (only the default one)")
@router.get("/dev-branches/", include_in_schema=False)
def list_branches(request: Request, principal: Principal = Depends(caller)) -> list[dict[str, Any]]:
    return [_branch_json(request, principal)]


@router.get("/dev-branches/{branch_id}", summary="Branch detail (the default branch)")
def branch_detail(branch_id: str, request: Request, principal: Principal = Depends(caller)) -> dict[str, Any]:
    _check_branch(branch_id)
    return _branch_json(request, principal)
