"""The CARTO-compatible face: SQL API (queries, batch jobs, COPY) and Auth API (API keys, ``me``).

Every route is served under ``/user/<project>/``, ``/u/<project>/`` and at the root (project
from the Host's first label, else from the token), for API versions ``v1`` and ``v2``, with
and without a trailing slash — never redirecting, since a redirect would lose a streamed COPY
body. Errors use CARTO's SQL envelope ``{"error": ["message"]}`` (the Auth API's own:
``{"errors": "message"}``).
"""

from __future__ import annotations

from fastapi import APIRouter

from entrepot.core.errors import Kind
from entrepot.faces.carto import (
    api_keys,
    datasets,
    imports,
    maps,
    sql,
    synchronizations,
    users,
    visualizations,
    viz_exports,
)
from entrepot.faces.carto.deps import PREFIXES, render_error
from entrepot.faces.face import Face

__all__ = ["FACE", "PREFIXES", "TAG", "render_error", "router"]
TAG = "SQL API (CARTO)"


def router() -> APIRouter:
    r = APIRouter(tags=[TAG])
    r.include_router(sql.router())
    r.include_router(api_keys.router())
    r.include_router(imports.router())
    r.include_router(datasets.router())
    r.include_router(synchronizations.router())
    r.include_router(visualizations.router())
    r.include_router(viz_exports.router())
    r.include_router(users.router())
    r.include_router(maps.router())
    return r


FACE = Face(
    tag=TAG,
    description="CARTO-compatible SQL API (queries, batch jobs, COPY FROM/TO), Auth API (API keys), "
    "Import API and datasets.",
    router=router,
    prefixes=PREFIXES,
    render_error=render_error,
    # CARTO answers a statement over its time limit, and a project out of query slots, with 429
    statuses={Kind.TIME_LIMIT: 429, Kind.BUSY: 429},
)
