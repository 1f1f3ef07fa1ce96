"""Operations endpoints: liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.concurrency import run_in_threadpool
from starlette.responses import JSONResponse, Response

from entrepot._version import __version__
from entrepot.core.errors import EntrepotError
from entrepot.faces.face import Face
from entrepot.faces.http import services_of
from entrepot.metrics import QUEUE_DEPTH, REGISTRY

TAG = "Operations"
router = APIRouter(tags=[TAG])
FACE = Face(tag=TAG, description="Health, readiness and metrics.", router=lambda: router)


@router.get("/health", summary="Liveness: the process answers")
def health() -> dict[str, Any]:
    return {"status": "ok", "version": __version__}


@router.get("/ready", summary="Readiness: the catalog and the engine are reachable")
def ready(request: Request) -> JSONResponse:
    services = services_of(request)
    checks: dict[str, str] = {}
    probes = {"catalog": lambda: services.catalog.ping(), "engine": lambda: services.engine.ping()}
    for name, probe in probes.items():
        try:
            probe()
            checks[name] = "ok"
        except EntrepotError as exc:
            checks[name] = exc.message
        except Exception as exc:  # readiness must answer, whatever broke
            checks[name] = f"{type(exc).__name__}: {exc}"
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(request: Request) -> Response:
    services = services_of(request)
    try:
        counts = await run_in_threadpool(services.jobs.counts)
        for status, n in counts.items():
            QUEUE_DEPTH.labels(status).set(n)
    except EntrepotError:
        pass  # still serve the process metrics when the catalog is down
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
