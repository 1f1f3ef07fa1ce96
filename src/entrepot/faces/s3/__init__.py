"""The S3-compatible API over object spaces: a space is a bucket, an object key an S3 key.

Unlike the other faces it is not a set of FastAPI routes: S3 routes by query subresource and
Host, answers errors in XML chosen by the request's *signature* rather than its path, and
streams bodies with exact control of status, headers and ``Connection: close``. So it is a
pure ASGI app (:class:`S3App`) that :class:`S3Dispatch` (installed by ``app.create_app``) hands
every SigV4-signed request (any port) and every request on the dedicated S3 listener.

``FACE`` names it like every face (its OpenAPI tag documents where it is); its router has no
routes. The S3 access keys it authenticates with are managed by the ``s3keys`` face.

Modules: :mod:`.dispatch` (what is an S3 request), :mod:`.app` (the request flow),
:mod:`.wire` (request and reply), :mod:`.addressing` (bucket and key), :mod:`.sigv4` and
:mod:`.auth` (signatures, the caller), :mod:`.bodies` and :mod:`.awschunked` (bodies and
checksums), :mod:`.xmlio` (XML), :mod:`.errors` (S3 codes), :mod:`.router` (operations) and
one module per operation group (``ops_*``).
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import Response

from entrepot.faces.errors import Problem
from entrepot.faces.face import Face
from entrepot.faces.s3.app import S3App, error_reply
from entrepot.faces.s3.dispatch import S3Dispatch, is_s3_request, on_s3_port
from entrepot.faces.s3.errors import S3Error, from_core

__all__ = [
    "FACE",
    "PREFIXES",
    "TAG",
    "S3App",
    "S3Dispatch",
    "is_s3_request",
    "on_s3_port",
    "render_error",
    "router",
]

TAG = "S3"
PREFIXES: tuple[str, ...] = ()  # S3 requests are told apart by their signature, not by a path


def router() -> APIRouter:
    return APIRouter(tags=[TAG])


def render_error(request: Request, problem: Problem) -> Response:
    """An error in S3's XML envelope (S3 requests never reach FastAPI's handlers; for completeness)."""
    error = (
        from_core(problem.error)
        if problem.error is not None
        else S3Error("InternalError", problem.message, 500)
    )
    reply = error_reply(error, None, problem.exception_id)
    return Response(reply.body, status_code=reply.status, headers=dict(reply.headers))


FACE = Face(
    tag=TAG,
    description="S3-compatible API over the object spaces (boto3, the AWS CLI, DuckDB httpfs, s3fs, rclone): "
    "requests signed with AWS Signature Version 4 on this port, or any request on the S3 listener "
    "(s3_port). See docs/s3.md.",
    router=router,
    prefixes=PREFIXES,
    render_error=render_error,
)
