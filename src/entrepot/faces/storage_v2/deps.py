"""Dependencies of the Keboola face."""

from __future__ import annotations

from fastapi import Request

from entrepot.core.auth import Principal
from entrepot.core.errors import InvalidInput, NotFound, Unauthenticated
from entrepot.core.ids import parse_id
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


def numeric_id(value: str, kind: str, not_found_code: str) -> int:
    """A job or token id from the path: 400 when it is not a number, 404 when no row can have it."""
    if not (value.isascii() and value.isdigit()):
        raise InvalidInput(f"invalid {kind} id {value!r}; {kind} ids are numbers")
    number = parse_id(value)
    if number is None:  # 0 or beyond the catalog's integer range: names nothing
        raise NotFound(f"{kind} {value} not found", code=not_found_code)
    return number
