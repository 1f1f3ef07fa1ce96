"""Keboola tokens: verify, list, create, detail, refresh, delete."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Request
from starlette.responses import JSONResponse, Response

from entrepot.core import auth
from entrepot.core.auth import Principal, TokenSpec
from entrepot.core.catalog import Token
from entrepot.core.projects import get_project
from entrepot.core.services import Services
from entrepot.faces.http import services_of
from entrepot.faces.storage_v2.deps import PREFIX, caller, numeric_id
from entrepot.faces.storage_v2.params import Params, keboola_params
from entrepot.faces.storage_v2.render import token_json

router = APIRouter(prefix=PREFIX)  # full paths: metrics and logs name the real route


def _render(services: Services, row: Token, secret: str | None = None) -> dict[str, Any]:
    project = get_project(services.catalog, row.project_id)
    creator = None
    if row.creator_token_id is not None:
        with services.catalog.session(readonly=True) as s:
            creator = s.get(Token, row.creator_token_id)
    return token_json(services, row, project, secret=secret, creator=creator)


def _token_id(value: str) -> int:
    return numeric_id(value, "token", "storage.tokens.notFound")


@router.get("/tokens/verify", summary="Verify the calling token")
def verify(request: Request, principal: Principal = Depends(caller)) -> dict[str, Any]:
    services = services_of(request)
    row = auth.get_token(services.catalog, principal.token_id or 0, principal)
    return _render(services, row)


@router.get("/tokens", summary="List the project's tokens")
def list_tokens(request: Request, principal: Principal = Depends(caller)) -> list[dict[str, Any]]:
    services = services_of(request)
    rows = auth.list_tokens(services.catalog, principal.project_id or 0, principal)
    return [_render(services, row) for row in rows]


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
    issued = auth.create_token(services.catalog, principal.project_id or 0, spec, creator=principal)
    return JSONResponse(_render(services, issued.row, issued.token), status_code=201)


@router.get("/tokens/{token_id}", summary="Token detail")
def token_detail(token_id: str, request: Request, principal: Principal = Depends(caller)) -> dict[str, Any]:
    services = services_of(request)
    return _render(services, auth.get_token(services.catalog, _token_id(token_id), principal))


@router.post("/tokens/{token_id}/refresh", summary="Replace the token's secret")
def refresh(token_id: str, request: Request, principal: Principal = Depends(caller)) -> dict[str, Any]:
    services = services_of(request)
    issued = auth.refresh_token(services.catalog, _token_id(token_id), principal)
    return _render(services, issued.row, issued.token)


@router.delete("/tokens/{token_id}", status_code=204, summary="Revoke a token")
def delete_token(token_id: str, request: Request, principal: Principal = Depends(caller)) -> Response:
    auth.revoke_token(services_of(request).catalog, _token_id(token_id), principal)
    return Response(status_code=204)
