"""Keboola tokens: verify, list, create, detail, refresh, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from entrepot.core import tokens
from entrepot.core.auth import Principal, TokenSpec
from entrepot.faces.http import services_of
from entrepot.faces.storage_v2.deps import PREFIX, caller, numeric_id
from entrepot.faces.storage_v2.params import Params, keboola_params
from entrepot.faces.storage_v2.render import token_json

router = APIRouter(prefix=PREFIX)  # full paths: metrics and logs name the real route


def _token_id(value: str) -> int:
    return numeric_id(value, "token", "storage.tokens.notFound")


@router.get("/tokens/verify", summary="Verify the calling token")
def verify(request: Request, principal: Principal = Depends(caller)) -> dict[str, Any]:
    services = services_of(request)
    return token_json(services, tokens.verify(services.catalog, principal))


@router.get("/tokens", summary="List the project's tokens")
def list_tokens(request: Request, principal: Principal = Depends(caller)) -> list[dict[str, Any]]:
    services = services_of(request)
    return [token_json(services, t) for t in tokens.list_project_tokens(services.catalog, principal)]


@router.post("/tokens", status_code=201, summary="Create a token (the secret is returned once)")
def create_token(
    request: Request, principal: Principal = Depends(caller), params: Params = Depends(keboola_params)
) -> JSONResponse:
    services = services_of(request)
    spec = TokenSpec(
        description=params.str("description", "") or "",
        can_manage_buckets=params.bool("canManageBuckets"),
        can_read_all_file_uploads=params.bool("canReadAllFileUploads"),
        can_manage_tokens=params.bool("canManageTokens"),
        can_manage_spaces=params.bool("canManageSpaces"),
        bucket_permissions=params.map("bucketPermissions"),
        space_permissions=params.map("spacePermissions"),
        expires_in=params.int("expiresIn"),
        # entrepot extension: the user the token belongs to (Keboola's "owner" is the project)
        owner=params.str("owner") or params.str("ownerName"),
    )
    issued = tokens.create(services.catalog, principal, spec)
    return JSONResponse(token_json(services, issued), status_code=201)


@router.get("/tokens/{token_id}", summary="Token detail")
def token_detail(token_id: str, request: Request, principal: Principal = Depends(caller)) -> dict[str, Any]:
    services = services_of(request)
    return token_json(services, tokens.detail(services.catalog, principal, _token_id(token_id)))


@router.post("/tokens/{token_id}/refresh", summary="Replace the token's secret")
def refresh(token_id: str, request: Request, principal: Principal = Depends(caller)) -> dict[str, Any]:
    services = services_of(request)
    return token_json(services, tokens.refresh(services.catalog, principal, _token_id(token_id)))


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token")
def delete_token(token_id: str, request: Request, principal: Principal = Depends(caller)) -> Response:
    tokens.revoke(services_of(request).catalog, principal, _token_id(token_id))
    return Response(status_code=204)
