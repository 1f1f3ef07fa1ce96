"""Request plumbing of the spaces face: who is calling (a token or a presigned URL), user metadata."""

from __future__ import annotations

from fastapi import Request

from entrepot.core.objects import service
from entrepot.core.objects.objects import validate_object_key
from entrepot.faces.http import raw_path_tail, resolve_principal

PREFIX = "/spaces/v1"
META_PREFIX = "x-entrepot-meta-"


async def caller_of(request: Request) -> service.Caller:
    """The presigned URL a request was made with (a ``signature`` in its query), else its token's
    principal (anonymous without one): for the object routes, which accept both."""
    signed = service.presigned(request.query_params)
    if signed is not None:
        return signed
    return await resolve_principal(request)


def object_key(request: Request, key: str) -> str:
    """The object key of the URL, checked (invalid UTF-8 in it is a 400, not U+FFFD)."""
    return validate_object_key(raw_path_tail(request, key))


def user_metadata(request: Request) -> dict[str, str]:
    """``X-Entrepot-Meta-<name>: <value>`` headers as a metadata map."""
    return {
        name[len(META_PREFIX) :]: value
        for name, value in request.headers.items()
        if name.lower().startswith(META_PREFIX)
    }
