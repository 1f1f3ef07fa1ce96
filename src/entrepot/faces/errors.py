"""One place that turns exceptions into responses, in the envelope of the face they belong to.

A core error carries a :class:`~entrepot.core.errors.Kind`; :data:`STATUSES` is the common
kind → HTTP status map, and a face overrides the entries its API answers differently
(``Face.statuses``). The face whose prefix is the longest match of the request's path renders
the :class:`Problem` in its own envelope; paths of no face get :func:`default_renderer`.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

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


class HTTPError(E.EntrepotError):
    """An error about HTTP itself that a face raises (a byte range, a precondition): it names
    its status and headers, which every face answers alike. Core errors never do this."""

    status = 400
    headers: dict[str, str] | None = None


STATUSES: Mapping[E.Kind, int] = {
    E.Kind.INTERNAL: 500,
    E.Kind.INVALID: 400,
    E.Kind.TOO_LARGE: 413,
    E.Kind.TIME_LIMIT: 400,
    E.Kind.BUSY: 429,
    E.Kind.UNAUTHENTICATED: 401,
    E.Kind.DENIED: 403,
    E.Kind.NOT_FOUND: 404,
    E.Kind.CONFLICT: 409,
    E.Kind.ALREADY_EXISTS: 409,
    E.Kind.GONE: 410,
    E.Kind.NOT_SUPPORTED: 501,
    E.Kind.UNAVAILABLE: 503,
    E.Kind.CANCELLED: 409,
}


def default_renderer(request: Request, problem: Problem) -> Response:
    body = {"error": {"code": problem.code, "message": problem.message}, "exceptionId": problem.exception_id}
    return JSONResponse(body, status_code=problem.status, headers=problem.headers)


class ErrorFace(Protocol):
    """What error handling needs of a face (:class:`entrepot.faces.face.Face` has it)."""

    @property
    def prefixes(self) -> tuple[str, ...]: ...

    @property
    def render_error(self) -> Renderer: ...

    @property
    def statuses(self) -> Mapping[E.Kind, int]: ...


class _DefaultFace:
    prefixes: tuple[str, ...] = ()
    render_error: Renderer = staticmethod(default_renderer)
    statuses: Mapping[E.Kind, int] = {}


_DEFAULT: ErrorFace = _DefaultFace()


def _face_of(faces: Sequence[tuple[str, ErrorFace]], path: str) -> ErrorFace:
    for prefix, face in faces:  # longest prefix first
        if path == prefix.rstrip("/") or path.startswith(prefix):
            return face
    return _DEFAULT


def status_of(face: ErrorFace, kind: E.Kind) -> int:
    """The HTTP status ``face`` answers an error of ``kind`` with."""
    return face.statuses.get(kind, STATUSES[kind])


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


def install_error_handlers(app: FastAPI, faces: Sequence[ErrorFace]) -> None:
    """Every error under a face's prefix is answered by that face (the longest prefix wins)."""
    by_prefix = sorted(
        ((prefix, face) for face in faces for prefix in face.prefixes), key=lambda item: -len(item[0])
    )

    def render(request: Request, problem: Problem) -> Response:
        return _face_of(by_prefix, request.url.path).render_error(request, problem)

    @app.exception_handler(E.EntrepotError)
    async def _domain(request: Request, exc: E.EntrepotError) -> Response:
        face = _face_of(by_prefix, request.url.path)
        if isinstance(exc, HTTPError):
            status, headers = exc.status, exc.headers
        else:
            status, headers = status_of(face, exc.kind), None
        problem = Problem(status, exc.code, exc.message, _exception_id(), error=exc, headers=headers)
        if status >= 500:
            log.warning("%s %s -> %s: %s", request.method, request.url.path, status, exc.message)
        return face.render_error(request, problem)

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
