"""Signed, expiring URL tokens: HMAC-SHA256 over (purpose, subject, expiry).

A signed URL lets someone without a token do exactly one thing (``purpose``, e.g.
``files.download``) to exactly one thing (``subject``, e.g. a file id) until ``expires``
(unix seconds). The signature is URL-safe base64 without padding.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Sequence
from urllib.parse import urlencode

from entrepot.core.errors import PermissionDenied


def _message(purpose: str, subject: str, expires_at: int) -> bytes:
    for part, name in ((purpose, "purpose"), (subject, "subject")):
        if "\n" in part:
            raise ValueError(f"signing {name} may not contain a newline")
    return f"entrepot-signed-url-v1\n{purpose}\n{subject}\n{int(expires_at)}".encode()


def sign(secret: bytes, purpose: str, subject: str, expires_at: int) -> str:
    """The signature of (purpose, subject, expires_at) under ``secret``."""
    digest = hmac.new(secret, _message(purpose, subject, expires_at), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def verify(
    secret: bytes | Sequence[bytes],
    purpose: str,
    subject: str,
    expires: int | str | None,
    signature: str | None,
    *,
    now: float | None = None,
) -> None:
    """Check a signed URL's ``expires`` and ``signature``; raise ``PermissionDenied`` if it is not valid.

    ``secret`` may be several keys (current first, then former ones during a rotation); the
    signature must match one of them. The comparison is constant-time. The signature is checked
    before the expiry, so a tampered ``expires`` is reported as an invalid signature, not as an
    expired link.
    """
    if expires is None or signature is None or str(expires) == "" or signature == "":
        raise PermissionDenied(
            "this URL needs both 'expires' and 'signature' query parameters (or a token)",
            code="signature.missing",
        )
    try:
        expires_at = int(str(expires))
    except ValueError as exc:
        raise PermissionDenied(
            "the 'expires' parameter of this URL is not a number", code="signature.invalid"
        ) from exc
    keys = (secret,) if isinstance(secret, bytes) else tuple(secret)
    presented = signature.encode("utf-8", errors="replace")
    matches = [
        hmac.compare_digest(sign(key, purpose, subject, expires_at).encode("ascii"), presented)
        for key in keys
    ]
    if not any(matches):
        raise PermissionDenied(
            "the signature of this URL is not valid; ask the API for a fresh URL", code="signature.invalid"
        )
    current = time.time() if now is None else now
    if expires_at <= current:
        raise PermissionDenied(
            "this signed URL has expired; ask the API for a fresh one (file detail returns a new 'url')",
            code="signature.expired",
        )


def signed_query(secret: bytes, purpose: str, subject: str, *, ttl: int, now: float | None = None) -> str:
    """``expires=<unix seconds>&signature=<sig>`` valid for ``ttl`` seconds from now."""
    expires_at = int(time.time() if now is None else now) + int(ttl)
    return urlencode({"expires": expires_at, "signature": sign(secret, purpose, subject, expires_at)})
