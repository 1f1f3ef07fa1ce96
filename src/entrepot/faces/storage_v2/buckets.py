"""Keboola buckets: list, create, detail, delete, the tables of a bucket, and table creation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from entrepot.core.auth import Principal
from entrepot.core.tables import service as tables
from entrepot.faces.http import services_of
from entrepot.faces.storage_v2.deps import PREFIX, caller
from entrepot.faces.storage_v2.jobs import job_response
from entrepot.faces.storage_v2.params import Params, keboola_params
from entrepot.faces.storage_v2.render_tables import bucket_json, table_json
from entrepot.faces.storage_v2.table_params import load_options, load_source, parse_after, run_id

router = APIRouter(prefix=PREFIX)  # full paths: metrics and logs name the real route


@router.get("/buckets", summary="List buckets")
def list_buckets(request: Request, principal: Principal = Depends(caller)) -> list[dict[str, Any]]:
    services = services_of(request)
    return [bucket_json(services, b) for b in tables.list_buckets(services, principal)]


@router.post("/buckets", status_code=201, summary="Create a bucket")
def create_bucket(
    request: Request, principal: Principal = Depends(caller), params: Params = Depends(keboola_params)
) -> JSONResponse:
    services = services_of(request)
    bucket = tables.create_bucket(
        services,
        principal,
        params.str("name"),
        stage=params.str("stage"),
        description=params.str("description", "") or "",
        display_name=params.str("displayName"),
    )
    return JSONResponse(bucket_json(services, bucket, tables=[]), status_code=201)


@router.get("/buckets/{bucket_id}", summary="Bucket detail (tables as Table objects)")
def bucket_detail(bucket_id: str, request: Request, principal: Principal = Depends(caller)) -> dict[str, Any]:
    services = services_of(request)
    bucket, its_tables = tables.bucket_detail(services, principal, bucket_id)
    return bucket_json(services, bucket, tables=its_tables)


@router.delete("/buckets/{bucket_id}", summary="Delete a bucket (force: with its tables; async: as a job)")
def delete_bucket(
    bucket_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> Response:
    services = services_of(request)
    force, run_async = parse_after(
        lambda: tables.check_bucket(services, principal, bucket_id),
        lambda: (params.bool("force"), params.bool("async")),
    )
    job = tables.delete_bucket(
        services, principal, bucket_id, force=force, run_async=run_async, run_id=run_id(request)
    )
    return Response(status_code=204) if job is None else job_response(services, job)


@router.get("/buckets/{bucket_id}/tables", summary="Tables of a bucket")
def bucket_tables(
    bucket_id: str, request: Request, principal: Principal = Depends(caller)
) -> list[dict[str, Any]]:
    services = services_of(request)
    return [table_json(services, v) for v in tables.bucket_tables(services, principal, bucket_id)]


@router.post("/buckets/{bucket_id}/tables-async", summary="Create a table from CSV (job)")
def create_table(
    bucket_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> JSONResponse:
    services = services_of(request)
    name, primary_key, source, options = parse_after(
        lambda: tables.check_bucket(services, principal, bucket_id, "write"),
        lambda: (params.str("name"), params.list("primaryKey"), load_source(params), load_options(params)),
    )
    job = tables.create_table(
        services,
        principal,
        bucket_id,
        name,
        source,
        options,
        primary_key=primary_key,
        run_id=run_id(request),
    )
    return job_response(services, job)
