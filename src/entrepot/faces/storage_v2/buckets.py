"""Keboola buckets: list, create, detail, delete, the tables of a bucket, and table creation."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from entrepot.core.auth import Principal
from entrepot.core.tables import buckets as core_buckets
from entrepot.core.tables import tables as core_tables
from entrepot.core.tables.names import validate_table_name
from entrepot.core.tables.store import get_bucket, table_taken, taken_table_name
from entrepot.faces.http import services_of
from entrepot.faces.storage_v2.deps import PREFIX, caller
from entrepot.faces.storage_v2.jobs import start_job
from entrepot.faces.storage_v2.load_params import load_params
from entrepot.faces.storage_v2.params import Params, keboola_params
from entrepot.faces.storage_v2.render_tables import bucket_json, table_json

router = APIRouter(prefix=PREFIX)  # full paths: metrics and logs name the real route


@router.get("/buckets", summary="List buckets")
def list_buckets(request: Request, principal: Principal = Depends(caller)) -> list[dict[str, Any]]:
    services = services_of(request)
    return [bucket_json(services, b) for b in core_buckets.list_buckets(services, principal)]


@router.post("/buckets", status_code=201, summary="Create a bucket")
def create_bucket(
    request: Request, principal: Principal = Depends(caller), params: Params = Depends(keboola_params)
) -> JSONResponse:
    services = services_of(request)
    bucket = core_buckets.create_bucket(
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
    bucket = get_bucket(services, principal, bucket_id)
    return bucket_json(services, bucket, tables=core_tables.list_tables(services, principal, bucket=bucket))


@router.delete("/buckets/{bucket_id}", summary="Delete a bucket (force: with its tables; async: as a job)")
def delete_bucket(
    bucket_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> Response:
    services = services_of(request)
    force = params.bool("force")
    bucket = core_buckets.check_delete(services, principal, bucket_id, force=force)  # 404 even when async
    if params.bool("async"):
        return start_job(
            request,
            principal,
            "buckets.delete",
            {"bucketId": bucket.ident, "force": force},
            subject=bucket.ident,
        )
    core_buckets.delete_bucket(services, principal, bucket.ident, force=force)
    return Response(status_code=204)


@router.get("/buckets/{bucket_id}/tables", summary="Tables of a bucket")
def bucket_tables(
    bucket_id: str, request: Request, principal: Principal = Depends(caller)
) -> list[dict[str, Any]]:
    services = services_of(request)
    bucket = get_bucket(services, principal, bucket_id)
    return [table_json(services, v) for v in core_tables.list_tables(services, principal, bucket=bucket)]


@router.post("/buckets/{bucket_id}/tables-async", summary="Create a table from CSV (job)")
def create_table(
    bucket_id: str,
    request: Request,
    principal: Principal = Depends(caller),
    params: Params = Depends(keboola_params),
) -> JSONResponse:
    services = services_of(request)
    bucket = get_bucket(services, principal, bucket_id, "write")
    name = validate_table_name(params.str("name"))
    table_id = f"{bucket.ident}.{name}"
    existing = taken_table_name(services, bucket.id, name)
    if existing is not None:
        raise table_taken(bucket.ident, name, existing)
    job_params: dict[str, Any] = {"tableId": table_id, "bucketId": bucket.ident, "name": name}
    job_params["primaryKey"] = params.list("primaryKey")
    job_params.update(load_params(request, principal, params))
    return start_job(request, principal, "tables.create", job_params, subject=table_id)
