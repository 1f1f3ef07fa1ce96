"""Signed URLs of files: token-free links that download or upload one file until they expire.

A link is the file's endpoint plus ``expires`` and ``signature`` (:mod:`entrepot.core.signing`),
valid ``signed_url_ttl`` seconds; it is verified against every current and former key, so a key
rotation does not break links already handed out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from entrepot.core import signing

if TYPE_CHECKING:
    from entrepot.core.catalog import File
    from entrepot.core.services import Services

DOWNLOAD = "files.download"
UPLOAD = "files.upload"


@dataclass(frozen=True)
class SignedLink:
    """The ``expires`` and ``signature`` a caller presented (either may be missing)."""

    expires: str | None
    signature: str | None


def download_url(services: Services, file: File) -> str:
    """A token-free URL that downloads the file until ``signed_url_ttl`` seconds from now."""
    return _url(services, DOWNLOAD, file.id, "download")


def upload_url(services: Services, file: File) -> str:
    """A token-free URL that accepts the file's bytes (PUT or POST) for ``signed_url_ttl`` seconds."""
    return _url(services, UPLOAD, file.id, "upload")


def verify(services: Services, purpose: str, file_id: int, link: SignedLink) -> None:
    """``PermissionDenied`` unless ``link`` is a valid, unexpired link for ``purpose`` on the file."""
    signing.verify(services.verification_keys, purpose, str(file_id), link.expires, link.signature)


def _url(services: Services, purpose: str, file_id: int, action: str) -> str:
    query = signing.signed_query(
        services.secret_key, purpose, str(file_id), ttl=services.settings.signed_url_ttl
    )
    return f"{services.settings.effective_public_url}/v2/storage/files/{file_id}/{action}?{query}"
