"""Dependencies of the Keboola face."""

from __future__ import annotations

from fastapi import Request

from entrepot.core.auth import Principal
from entrepot.core.errors import Unauthenticated
from entrepot.faces.http import resolve_principal

PREFIX = "/v2/storage"


async def caller(request: Request) -> Principal:
    """The authenticated caller; Keboola reads tokens from headers only, never the query string."""
    principal = await resolve_principal(request, allow_api_key=False)
    if principal.anonymous:
        raise Unauthenticated(
            "access token must be set: send it in the X-StorageApi-Token header", code="storage.tokenMissing"
        )
    return principal
