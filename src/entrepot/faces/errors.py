"""One place that turns exceptions into responses, in the envelope of the face they belong to."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.responses import JSONResponse, Response

from entrepot.core import errors as E
from entrepot.logs import request_id_var

log = logging.getLogger("entrepot.http")


@dataclass(frozen=True)
class Problem:
    """A failure, face-neutral: what every renderer gets."""

    status: int
    code: str
    message: str
    exception_id: str
    error: E.EntrepotError | None = None
    headers: dict[str, str] | None = None


Renderer = Callable[[Request, Problem], Response]
_faces: list[tuple[str, Renderer]] = []


def register_face(prefix: str, renderer: Renderer) -> None:
    """Errors under ``prefix`` are rendered by ``renderer`` (longest prefix wins)."""
    _faces.append((prefix, renderer))
    _faces.sort(key=lambda item: len(item[0]), reverse=True)


def default_renderer(request: Request, problem: Problem) -> Response:
    body = {"error": {"code": problem.code, "message": problem.message}, "exceptionId": problem.exception_id}
    return JSONResponse(body, status_code=problem.status, headers=problem.headers)


def render(request: Request, problem: Problem) -> Response:
    path = request.url.path
    for prefix, renderer in _faces:
        if path == prefix.rstrip("/") or path.startswith(prefix):
            return renderer(request, problem)
    return default_renderer(request, problem)


def _exception_id() -> str:
    return request_id_var.get() or uuid.uuid4().hex


_HTTP_CODES = {
    400: ("request.invalid", "the request is malformed"),
    401: ("authentication.required", "authentication is required"),
    403: ("accessDenied", "access denied"),
    404: ("routeNotFound", "no such route"),
    405: ("methodNotAllowed", "method not allowed"),
    413: ("validation.tooLarge", "request body too large"),
    414: ("request.uriTooLong", "request URI too long"),
    431: ("request.headersTooLarge", "request headers too large"),
}


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(E.EntrepotError)
    async def _domain(request: Request, exc: E.EntrepotError) -> Response:
        problem = Problem(
            exc.status,
            exc.code,
            exc.message,
            _exception_id(),
            error=exc,
            headers=getattr(exc, "headers", None),
        )
        if exc.status >= 500:
            log.warning("%s %s -> %s: %s", request.method, request.url.path, exc.status, exc.message)
        return render(request, problem)

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Request, exc: StarletteHTTPException) -> Response:
        code, default = _HTTP_CODES.get(exc.status_code, ("http.error", "request failed"))
        message = exc.detail if isinstance(exc.detail, str) and exc.detail else default
        if exc.status_code == 404 and message in ("Not Found", default):
            message = f"route not found: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} is not allowed on {request.url.path}"
        problem = Problem(
            exc.status_code, code, message, _exception_id(), headers=getattr(exc, "headers", None)
        )
        return render(request, problem)

    @app.exception_handler(ClientDisconnect)
    async def _disconnect(request: Request, exc: ClientDisconnect) -> Response:
        # the client went away mid-body: whatever it was sending was not stored; nobody reads this
        log.info("%s %s: client disconnected before the body was complete", request.method, request.url.path)
        problem = Problem(
            400, "request.incomplete", "the request body ended early; nothing was stored", _exception_id()
        )
        return render(request, problem)

    @app.exception_handler(RequestValidationError)
    async def _validation(request: Request, exc: RequestValidationError) -> Response:
        parts = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err.get("loc", ()) if p != "body")
            parts.append(f"{where}: {err.get('msg')}" if where else str(err.get("msg")))
        problem = Problem(400, "validation.invalid", "invalid request: " + "; ".join(parts), _exception_id())
        return render(request, problem)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        exception_id = _exception_id()
        log.exception(
            "unhandled error on %s %s [exceptionId=%s]", request.method, request.url.path, exception_id
        )
        problem = Problem(
            500,
            "internal",
            f"internal server error; report exception id {exception_id} to the administrator",
            exception_id,
        )
        return render(request, problem)
