"""The routes of the S3 access keys API: parse the request, make one core call, render the view."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from entrepot.core import access_keys
from entrepot.core.access_keys import AccessKeyView
from entrepot.faces.http import resolve_principal, services_of

PREFIX = "/s3/v1"
TAG = "S3 access keys"


class KeyCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: str = Field(
        default="", max_length=access_keys.MAX_DESCRIPTION, description="what the key is for"
    )
    expiresIn: int | None = Field(
        default=None, gt=0, description="seconds until the key stops working (never later than its token)"
    )
    tokenId: int | None = Field(
        default=None,
        description="the token the key belongs to (default: the caller's; another needs canManageTokens)",
    )


def iso(moment: datetime | None) -> str | None:
    """UTC time as ISO 8601 with milliseconds and a Z."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z") if moment else None


def key_json(view: AccessKeyView) -> dict[str, Any]:
    body: dict[str, Any] = {
        "accessKeyId": view.access_key_id,
        "tokenId": view.token_id,
        "description": view.description,
        "createdAt": iso(view.created_at),
        "lastUsedAt": iso(view.last_used_at),
        "expiresAt": iso(view.expires_at),
    }
    if view.secret_access_key is not None:
        body["secretAccessKey"] = view.secret_access_key
    return body


def router() -> APIRouter:
    r = APIRouter(prefix=PREFIX, tags=[TAG])

    @r.post("/keys", status_code=201, summary="Create an S3 access key (its secret is shown this once)")
    async def create_key(request: Request, body: KeyCreate | None = None) -> dict[str, Any]:
        principal = await resolve_principal(request)
        new = body or KeyCreate()
        view = await run_in_threadpool(
            lambda: access_keys.create(
                services_of(request),
                principal,
                description=new.description,
                token_id=new.tokenId,
                expires_in=new.expiresIn,
            )
        )
        return key_json(view)

    @r.get(
        "/keys", summary="List S3 access keys: the token's own (every key of the project for token managers)"
    )
    async def list_keys(request: Request) -> dict[str, Any]:
        principal = await resolve_principal(request)
        views = await run_in_threadpool(access_keys.list_keys, services_of(request), principal)
        return {"keys": [key_json(v) for v in views]}

    @r.delete(
        "/keys/{access_key_id}", status_code=204, summary="Revoke an S3 access key; it stops working at once"
    )
    async def revoke_key(access_key_id: str, request: Request) -> Response:
        principal = await resolve_principal(request)
        await run_in_threadpool(access_keys.revoke, services_of(request), principal, access_key_id)
        return Response(status_code=204)

    return r
