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
from entrepot.faces import apidocs, carto, exports, home, ops, s3, s3keys, spaces, storage_v2
from entrepot.faces.errors import install_error_handlers
from entrepot.faces.face import Face
from entrepot.logs import request_id_var
from entrepot.metrics import REQUEST_LATENCY

log = logging.getLogger("entrepot.http")
_BRANCH_RE = re.compile(r"^/v2/storage/branch/(?:default|\d+)/(?!metadata(?:/|$))(.+)$")
_REQUEST_ID_RE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# Every API the server speaks, in the order their routes are tried (and tagged in /docs).
FACES: tuple[Face, ...] = (
    home.FACE,
    ops.FACE,
    storage_v2.FACE,
    spaces.FACE,
    carto.FACE,
    exports.FACE,
    s3keys.FACE,
    s3.FACE,
)


class RequestContext:
    """Pure ASGI middleware: request id, Keboola branch aliases, access log and latency metrics."""

    def __init__(self, app: Any, s3_ports: frozenset[int] = frozenset()):
        self.app = app
        self.s3_ports = s3_ports

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        incoming = dict(scope.get("headers") or []).get(b"x-request-id", b"").decode("latin-1")
        request_id = incoming if _REQUEST_ID_RE.match(incoming) else uuid.uuid4().hex
        token = request_id_var.set(request_id)
        # never for S3 requests: the raw path is inside their signature (a bucket may be named v2)
        s3_request = s3.on_s3_port(scope, self.s3_ports) or s3.is_s3_request(scope)
        m = None if s3_request else _BRANCH_RE.match(scope["path"])
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


def _openapi_tags(faces: tuple[Face, ...]) -> list[dict[str, str]]:
    tags: dict[str, str] = {}
    for face in faces:
        tags.setdefault(face.tag, face.description)
    ops_tag = tags.pop(ops.TAG)  # listed last, after the APIs
    return [
        *({"name": t, "description": d} for t, d in tags.items()),
        {"name": ops.TAG, "description": ops_tag},
    ]


def create_app(
    settings: Settings,
    services: Services | None = None,
    *,
    workers: int | None = None,
    s3_ports: frozenset[int] = frozenset(),
) -> FastAPI:
    """Build the application. Without ``services`` it opens them at start-up and closes them at shutdown.

    ``s3_ports`` are the ports of dedicated S3 listeners: every request arriving there is S3.
    """
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
        openapi_tags=_openapi_tags(FACES),
    )
    if services is not None:
        app.state.services = services
    install_error_handlers(app, FACES)
    apidocs.install(app)
    for face in FACES:
        app.include_router(face.router())
    # the last added is the outermost: S3 requests leave before FastAPI's routing, inside RequestContext
    app.add_middleware(s3.S3Dispatch, s3_app=s3.S3App(s3_ports), s3_ports=s3_ports)
    app.add_middleware(RequestContext, s3_ports=s3_ports)
    return app
