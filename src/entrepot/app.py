"""The ASGI application: faces mounted over one set of services."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI

from entrepot._version import __version__
from entrepot.config import Settings
from entrepot.core.services import Services
from entrepot.faces import apidocs, carto, exports, home, ops, spaces, storage_v2
from entrepot.faces.errors import install_error_handlers, register_face
from entrepot.faces.storage_v2.render import render_error as keboola_error
from entrepot.logs import request_id_var
from entrepot.metrics import REQUEST_LATENCY

log = logging.getLogger("entrepot.http")
_BRANCH_RE = re.compile(r"^/v2/storage/branch/(?:default|\d+)/(?!metadata(?:/|$))(.+)$")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

register_face(storage_v2.PREFIX + "/", keboola_error)
for _prefix in carto.PREFIXES:
    register_face(_prefix, carto.render_error)
register_face(exports.PREFIX + "/", exports.render_error)


class RequestContext:
    """Pure ASGI middleware: request id, Keboola branch aliases, access log and latency metrics."""

    def __init__(self, app: Any):
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        m = _BRANCH_RE.match(scope["path"])
        if m:  # /v2/storage/branch/default/<rest> is an alias of /v2/storage/<rest>
            scope = {**scope, "path": f"/v2/storage/{m.group(1)}", "raw_path": None}
        status = 500
        started = time.perf_counter()

        async def send_wrapper(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-request-id", request_id.encode())]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed = time.perf_counter() - started
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            REQUEST_LATENCY.labels(template, scope["method"], f"{status // 100}xx").observe(elapsed)
            log.info("%s %s %s %.1fms", scope["method"], scope["path"], status, elapsed * 1000)
            request_id_var.reset(token)


def create_app(
    settings: Settings, services: Services | None = None, *, workers: int | None = None
) -> FastAPI:
    """Build the application. Without ``services`` it opens them at start-up and closes them at shutdown."""
    owned = services is None
    worker_count = settings.workers if workers is None else workers

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        svc = services or Services.open(settings)
        app.state.services = svc
        if worker_count > 0 and svc.workers is None:
            svc.start_workers(worker_count, name="serve")
        try:
            yield
        finally:
            if owned:
                svc.close()
            elif svc.workers is not None:
                svc.workers.stop()
                svc.workers = None

    app = FastAPI(
        title="entrepot",
        version=__version__,
        description="Self-hosted data storage: Keboola-compatible tables, object spaces, SQL and exports.",
        lifespan=lifespan,
        docs_url=None,  # served by faces/apidocs.py with the package's own assets
        redoc_url=None,
        openapi_tags=[
            {
                "name": storage_v2.TAG,
                "description": "Keboola Storage API v2 compatible tables, files and jobs.",
            },
            {
                "name": spaces.TAG,
                "description": "Object storage spaces (DCSS): objects, presigned URLs, multipart uploads.",
            },
            {
                "name": carto.TAG,
                "description": "CARTO-compatible SQL API: queries, batch jobs, COPY FROM/TO.",
            },
            {
                "name": exports.TAG,
                "description": "Export jobs (csv, json, parquet, excel) with filters, and export templates.",
            },
            {"name": ops.TAG, "description": "Health, readiness and metrics."},
        ],
    )
    if services is not None:
        app.state.services = services
    install_error_handlers(app)
    apidocs.install(app)
    app.include_router(home.router)
    app.include_router(ops.router)
    app.include_router(storage_v2.router())
    app.include_router(spaces.router())
    app.include_router(carto.router())
    app.include_router(exports.router())
    app.add_middleware(RequestContext)
    return app
