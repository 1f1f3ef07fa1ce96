"""Temporary S3 credentials (what Keboola's ``files/prepare`` hands out): stateless and scoped.

No table holds them. The session token *is* the credential's claim, MAC'd with a key derived
from the installation secret::

    ES1.<base64url(JSON claim)>.<base64url(HMAC-SHA256(K_mac, "ES1." + claim part))>

The claim names the project, the token it acts for, the file (its key, or the prefix of a
sliced file's parts), ``r`` or ``w``, and the expiry. The access key id is ``ES`` + 18 base32
characters of the token's SHA-256; the secret access key is an HMAC of the token under a
second derived key. Verifying a token finds the installation key that made it (the current
one or one of ``previous_secret_keys``) and derives the secret with that same key, so
credentials already handed out keep working across a rotation while the former key is kept.

The credentials die at their expiry (``min(now + s3_session_ttl, the token's expiry, the
file's expiry)``), and earlier with their token or file: ``core/s3_credentials.py`` checks
both on every request.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from entrepot.core.auth import Principal
from entrepot.core.catalog import File, Token
from entrepot.core.clock import utcnow
from entrepot.core.errors import Gone, InvalidInput, NotFound, Unauthenticated
from entrepot.core.secretbox import derive_key

if TYPE_CHECKING:
    from entrepot.core.services import Services

PREFIX = "ES"
TOKEN_VERSION = "ES1"
ACCESS_KEY_ID_LENGTH = 20  # like AWS's
SECRET_LENGTH = 40  # like AWS's
MAX_TOKEN_LENGTH = 8192  # a claim holds a key of at most 1,024 characters: far below this
_MAC_PURPOSE = "s3/session-mac"
_SECRET_PURPOSE = "s3/session-secret"


@dataclass(frozen=True)
class FileScope:
    """What a session credential may touch: one file's key (or its parts' prefix), read or write."""

    file_id: int
    key: str  # the file's key in the files bucket (a prefix when ``prefix``)
    prefix: bool
    access: Literal["r", "w"]

    def allows(self, key: str, access: Literal["r", "w"]) -> bool:
        """Whether the credential may ``access`` (``r`` or ``w``) the object ``key``."""
        if access == "w" and self.access != "w":
            return False
        return key.startswith(self.key) if self.prefix else key == self.key


@dataclass(frozen=True)
class SessionClaim:
    """What a session token says, once its MAC is verified."""

    project_id: int
    token_id: int
    scope: FileScope
    expires_at: int  # unix seconds


@dataclass(frozen=True)
class SessionCredentials:
    """Temporary S3 credentials, in the shape AWS STS answers them."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime


def mint(
    services: Services, principal: Principal, scope: FileScope, *, ttl: int | None = None
) -> SessionCredentials:
    """Credentials for ``principal``'s token that reach only ``scope``, for ``ttl`` seconds at most
    (default and longest: ``s3_session_ttl``), and never past the token's or the file's expiry.

    The caller (the files service) decides whether the principal may touch the file at all;
    this checks that the file exists in the principal's project and is not deleted or expired.
    """
    principal.require_authenticated()
    if scope.access not in ("r", "w"):
        raise InvalidInput(f"a session credential's access is 'r' or 'w', not {scope.access!r}")
    if not scope.key or len(scope.key) > 1024:
        raise InvalidInput("a session credential's key must have 1-1024 characters")
    lifetime = services.settings.s3_session_ttl if ttl is None else min(ttl, services.settings.s3_session_ttl)
    if lifetime <= 0:
        raise InvalidInput("a session credential's lifetime must be a positive number of seconds")
    now = utcnow()
    with services.catalog.session(readonly=True) as s:
        file = s.get(File, scope.file_id)
        token = s.get(Token, principal.token_id)
        if file is None or file.deleted_at is not None or file.project_id != principal.project_id:
            raise NotFound(f"file {scope.file_id} not found", code="files.notFound")
        if token is None or token.revoked_at is not None:
            raise Unauthenticated("this access token has been revoked", code="tokens.invalid")
        limits = [t for t in (token.expires_at, file.expires_at) if t is not None]
    expires_at = int(now.timestamp()) + int(lifetime)
    for limit in limits:
        expires_at = min(expires_at, int(limit.timestamp()))
    if expires_at <= int(now.timestamp()):
        raise Gone(f"file {scope.file_id} or its token has expired", code="files.expired")
    claim = SessionClaim(principal.project_id or 0, principal.token_id or 0, scope, expires_at)
    session_token = _encode(services.verification_keys[0], claim)
    return SessionCredentials(
        access_key_id=access_key_id_of(session_token),
        secret_access_key=_secret(services.verification_keys[0], session_token),
        session_token=session_token,
        expiration=datetime.fromtimestamp(expires_at, UTC),
    )


def verify(
    keys: Sequence[bytes], access_key_id: str, session_token: str | None, *, now: float | None = None
) -> tuple[SessionClaim, str]:
    """The claim of a session token presented with ``access_key_id``, and its secret access key.

    Raises ``Unauthenticated``: ``s3.invalidToken`` for a missing, malformed or forged token or
    one that belongs to another access key id; ``s3.expiredToken`` once it has expired. It does
    not look at the token or the file (``core/s3_credentials.py`` does).
    """
    if not session_token:
        raise _invalid("session credentials need their session token (X-Amz-Security-Token)")
    if len(session_token) > MAX_TOKEN_LENGTH or not session_token.isascii():
        raise _invalid("the session token is not valid")
    if not hmac.compare_digest(access_key_id_of(session_token), access_key_id):
        raise _invalid("the session token does not belong to this access key id")
    version, _, rest = session_token.partition(".")
    body, _, mac = rest.partition(".")
    if version != TOKEN_VERSION or not body or not mac:
        raise _invalid("the session token is not valid")
    signed = f"{version}.{body}".encode("ascii")
    key = next((k for k in keys if hmac.compare_digest(_mac(k, signed), mac)), None)
    if key is None:
        raise _invalid("the session token is not valid (forged, altered, or its server key was dropped)")
    claim = _decode(body)
    current = utcnow().timestamp() if now is None else now
    if claim.expires_at <= current:
        expired = datetime.fromtimestamp(claim.expires_at, UTC).isoformat()
        raise Unauthenticated(f"the session credentials expired at {expired}", code="s3.expiredToken")
    return claim, _secret(key, session_token)


def access_key_id_of(session_token: str) -> str:
    """``ES`` + 18 base32 characters of the token's SHA-256: the access key id that goes with it."""
    digest = hashlib.sha256(session_token.encode("utf-8", errors="replace")).digest()
    return PREFIX + base64.b32encode(digest).decode("ascii")[: ACCESS_KEY_ID_LENGTH - len(PREFIX)]


# -- the token's encoding ---------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: bytes, signed: bytes) -> str:
    return _b64(hmac.new(derive_key(secret, _MAC_PURPOSE), signed, hashlib.sha256).digest())


def _secret(secret: bytes, session_token: str) -> str:
    message = b"secret\n" + session_token.encode("ascii")
    digest = hmac.new(derive_key(secret, _SECRET_PURPOSE), message, hashlib.sha256).digest()
    return _b64(digest)[:SECRET_LENGTH]


def _encode(secret: bytes, claim: SessionClaim) -> str:
    fields: dict[str, Any] = {
        "p": claim.project_id,
        "t": claim.token_id,
        "f": claim.scope.file_id,
        "k": claim.scope.key,
        "x": claim.scope.prefix,
        "a": claim.scope.access,
        "e": claim.expires_at,
        "n": secrets.token_urlsafe(9),  # every credential is distinct, even minted in one second
    }
    body = _b64(json.dumps(fields, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
    signed = f"{TOKEN_VERSION}.{body}"
    return f"{signed}.{_mac(secret, signed.encode('ascii'))}"


def _decode(body: str) -> SessionClaim:
    """The claim of a token whose MAC was verified (so malformed here means a bug, not an attack)."""
    try:
        fields = json.loads(_unb64(body))
        access = fields["a"]
        if access not in ("r", "w"):
            raise ValueError(access)
        scope = FileScope(int(fields["f"]), str(fields["k"]), bool(fields["x"]), access)
        return SessionClaim(int(fields["p"]), int(fields["t"]), scope, int(fields["e"]))
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise _invalid("the session token is not valid") from exc


def _invalid(message: str) -> Unauthenticated:
    return Unauthenticated(message, code="s3.invalidToken")
