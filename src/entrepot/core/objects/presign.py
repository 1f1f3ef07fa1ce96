"""Presigned URLs: one method on one key (or one listing prefix), without a token, until expiry.

A token holder asks for a URL; the server signs (project, space, method, key or prefix, signer
token, expiry) with the installation secret (HMAC-SHA256, :mod:`entrepot.core.signing`). When
the URL is used, the signature is checked against the current and the former secrets (key
rotation), then the signing token must still exist, be valid and still hold the permission:
revoking a token revokes every URL it signed. Forged, altered or expired URLs get 403.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import quote, urlencode

from entrepot.core import signing
from entrepot.core.auth import Access, Principal, principal_of, token_is_expired
from entrepot.core.catalog import Project, Token
from entrepot.core.errors import InvalidInput, PermissionDenied
from entrepot.core.objects.objects import validate_object_key, validate_prefix
from entrepot.core.objects.spaces import SpaceInfo, authorize

if TYPE_CHECKING:
    from entrepot.core.services import Services

PURPOSE = "spaces.object"
METHODS: dict[str, Access] = {
    "GET": "read",
    "HEAD": "read",
    "LIST": "read",
    "PUT": "write",
    "DELETE": "write",
}
PARAMS = ("expires", "signature", "signer")


@dataclass(frozen=True)
class PresignedUrl:
    url: str
    method: str
    expires_at: int  # unix seconds


def _subject(space: SpaceInfo, method: str, target: str, signer: int) -> str:
    return f"{space.project_id}:{space.id}:{method}:{signer}:{target}"


def object_path(space: SpaceInfo, key: str | None = None) -> str:
    """The path of an object (or of the listing of a space) in the native API."""
    base = f"/spaces/v1/{quote(space.project_name, safe='')}/{quote(space.name, safe='')}/objects"
    return base if key is None else f"{base}/{quote(key, safe='/')}"


def presign(
    services: Services,
    space: SpaceInfo,
    principal: Principal,
    method: str,
    *,
    key: str | None = None,
    prefix: str | None = None,
    expires_in: int = 3600,
) -> PresignedUrl:
    """A URL that lets anyone do ``method`` on ``key`` (or LIST under ``prefix``) for ``expires_in`` seconds."""
    method = method.upper()
    if method not in METHODS:
        raise InvalidInput(
            f"method must be one of {', '.join(METHODS)}, not {method!r}", code="presign.badMethod"
        )
    principal.require_authenticated()
    authorize(space, principal, METHODS[method])
    limit = services.settings.presign_max_ttl
    if not isinstance(expires_in, int) or not 1 <= expires_in <= limit:
        raise InvalidInput(
            f"expiresIn must be between 1 and {limit} seconds (setting presign_max_ttl)",
            code="presign.badExpiry",
        )
    if method == "LIST":
        if key is not None:
            raise InvalidInput("a LIST URL takes a prefix, not a key", code="presign.badTarget")
        target = validate_prefix(prefix or "")
        path = object_path(space)
    else:
        if key is None or prefix is not None:
            raise InvalidInput(
                f"a {method} URL needs the object key (and no prefix)", code="presign.badTarget"
            )
        target = validate_object_key(key)
        path = object_path(space, key)
    assert principal.token_id is not None
    expires_at = int(time.time()) + expires_in
    signature = signing.sign(
        services.secret_key, PURPOSE, _subject(space, method, target, principal.token_id), expires_at
    )
    query = {"expires": expires_at, "signature": signature, "signer": principal.token_id}
    if method == "LIST":
        query = {"prefix": target, **query}
    url = f"{services.settings.effective_public_url}{path}?{urlencode(query)}"
    return PresignedUrl(url=url, method=method, expires_at=expires_at)


def is_presigned(params: dict[str, str]) -> bool:
    return "signature" in params


def verify(
    services: Services, space: SpaceInfo, method: str, target: str, params: dict[str, str]
) -> Principal:
    """Check a presigned request; returns the signer's principal (whose rights still apply)."""
    method = method.upper()
    if method == "LIST":
        validate_prefix(target)
    else:
        validate_object_key(target)
    signer_raw = params.get("signer", "")
    if not (signer_raw.isascii() and signer_raw.isdigit()) or len(signer_raw) > 18:
        raise PermissionDenied(
            "this presigned URL has no valid 'signer'; ask the API for a fresh URL", code="signature.invalid"
        )
    signer = int(signer_raw)
    candidates = ["GET", "HEAD"] if method == "HEAD" else [method]
    last: PermissionDenied | None = None
    for candidate in candidates:
        try:
            signing.verify(
                services.verification_keys,
                PURPOSE,
                _subject(space, candidate, target, signer),
                params.get("expires"),
                params.get("signature"),
            )
            break
        except PermissionDenied as exc:
            last = exc
    else:
        assert last is not None
        if last.code == "signature.invalid" and method in ("GET", "HEAD", "LIST", "PUT", "DELETE"):
            raise PermissionDenied(
                "the signature of this URL does not match this request (method, key or parameters changed, "
                "or it was forged); ask the API for a fresh URL",
                code="signature.invalid",
            ) from last
        raise last
    with services.catalog.session(readonly=True) as s:
        row = s.get(Token, signer)
        project = s.get(Project, row.project_id) if row is not None else None
        if (
            row is None
            or project is None
            or row.revoked_at is not None
            or token_is_expired(row)
            or project.disabled
        ):
            raise PermissionDenied(
                "the token that signed this URL was revoked or has expired", code="signature.signerRevoked"
            )
        principal = principal_of(row, project)
    authorize(space, principal, METHODS[method])
    return principal
