"""Request plumbing of the spaces face: who is calling, on which space, by token or presigned URL."""

from __future__ import annotations

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from entrepot.core.auth import Access, Principal
from entrepot.core.objects import presign
from entrepot.core.objects.spaces import SpaceInfo, authorize, get_space, resolve_project
from entrepot.faces.http import resolve_principal, services_of

PREFIX = "/spaces/v1"
META_PREFIX = "x-entrepot-meta-"


async def open_space(
    request: Request,
    project: str,
    space: str,
    access: Access,
    *,
    presign_target: tuple[str, str] | None = None,
) -> tuple[SpaceInfo, Principal]:
    """The space named in the URL and the caller, checked for ``access``.

    ``presign_target`` (method, key-or-prefix) says what a presigned URL must have been signed
    for; requests with a ``signature`` query parameter are checked that way instead of by token.
    """
    services = services_of(request)
    query = dict(request.query_params)
    if presign_target is not None and presign.is_presigned(query):
        info = await run_in_threadpool(_lookup, request, project, space)
        method, target = presign_target
        principal = await run_in_threadpool(presign.verify, services, info, method, target, query)
        return info, principal
    principal = await resolve_principal(request)
    info = await run_in_threadpool(_lookup, request, project, space)
    authorize(info, principal, access)
    return info, principal


def _lookup(request: Request, project: str, space: str) -> SpaceInfo:
    catalog = services_of(request).catalog
    return get_space(catalog, resolve_project(catalog, project), space)


def user_metadata(request: Request) -> dict[str, str]:
    """``X-Entrepot-Meta-<name>: <value>`` headers as a metadata map."""
    return {
        name[len(META_PREFIX) :]: value
        for name, value in request.headers.items()
        if name.lower().startswith(META_PREFIX)
    }
