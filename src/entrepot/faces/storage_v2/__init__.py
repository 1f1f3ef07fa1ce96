"""The Keboola Storage API v2 face (``/v2/storage``)."""

from __future__ import annotations

from fastapi import APIRouter

from entrepot.core.errors import Kind
from entrepot.faces.face import Face
from entrepot.faces.storage_v2 import buckets, files, index, jobs, table_data, tables, tokens
from entrepot.faces.storage_v2.deps import PREFIX
from entrepot.faces.storage_v2.render import render_error

__all__ = ["FACE", "PREFIX", "PREFIXES", "TAG", "render_error", "router"]

PREFIXES = (PREFIX + "/",)
TAG = "Keboola Storage API v2"


def router() -> APIRouter:
    r = APIRouter(tags=[TAG])
    r.add_api_route(PREFIX, index.index, methods=["GET"], include_in_schema=False)
    r.add_api_route(PREFIX + "/", index.index, methods=["GET"], summary="API index (no token needed)")
    for sub in (
        tokens.router,
        jobs.router,
        buckets.router,
        table_data.router,
        tables.router,
        files.router,
        index.router,
    ):
        r.include_router(sub)
    return r


FACE = Face(
    tag=TAG,
    description="Keboola Storage API v2 compatible tables, files and jobs.",
    router=router,
    prefixes=PREFIXES,
    render_error=render_error,
    statuses={Kind.ALREADY_EXISTS: 400},  # Keboola answers "already exists" with 400, not 409
)
