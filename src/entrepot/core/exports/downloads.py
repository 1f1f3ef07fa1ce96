"""Downloads of export files: by token, by presigned URL, and the presigned URLs themselves.

A completed export's file can be fetched with a token that sees the export, or without any
token through a URL signed for it (:mod:`entrepot.core.signing`, purpose :data:`DOWNLOAD`) that
expires with the signed-URL TTL or the file's retention, whichever comes first.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, BinaryIO

from entrepot.core import errors as E
from entrepot.core import signing
from entrepot.core.auth import Principal
from entrepot.core.catalog import ExportJob
from entrepot.core.clock import utcnow
from entrepot.core.exports.store import NOT_FOUND, ExportRecord, export_key, find_export, select_exports
from entrepot.core.jobs import SUCCEEDED

if TYPE_CHECKING:
    from entrepot.core.services import Services

DOWNLOAD = "exports.download"


@dataclass(frozen=True)
class Download:
    """A completed export's file, ready to be served (whole or by ranges)."""

    export_id: str
    file_name: str
    size: int
    etag: str
    content_type: str
    modified_at: datetime
    blob_key: str = field(repr=False)


def _downloadable(export: ExportRecord) -> Download:
    row = export.row
    if export.status != SUCCEEDED:
        raise E.Conflict(
            f"Export job is not completed (status: {export.status_word}); download it once it is completed",
            code="exports.notCompleted",
        )
    if row.file_expired_at is not None or row.blob_key is None:
        raise E.Gone(
            "The export file has expired and was removed; retry is not possible for completed jobs, "
            "create a new export",
            code="exports.fileExpired",
        )
    size = int(row.file_size or 0)
    return Download(
        export_id=row.uuid,
        file_name=row.file_name or "export",
        size=size,
        etag=f"{row.uuid.replace('-', '')}{size:x}",  # one file per export run: its id and size name it
        content_type=row.content_type or "application/octet-stream",
        modified_at=row.updated_at,
        blob_key=row.blob_key,
    )


def open_download(services: Services, principal: Principal, export_id: str) -> Download:
    """The file of an export the caller sees; conflict while it is not completed, gone once expired."""
    return _downloadable(find_export(services, principal, export_id))


def open_signed_download(
    services: Services, export_id: str, expires: str | None, signature: str | None
) -> Download:
    """The download a presigned URL grants (no token); denied for a forged or expired URL."""
    key = export_key(export_id)
    signing.verify(services.verification_keys, DOWNLOAD, key, expires, signature)
    with services.catalog.session(readonly=True) as s:
        row = s.execute(select_exports().where(ExportJob.uuid == key)).first()
    if row is None:
        raise E.NotFound(NOT_FOUND, code="exports.notFound")
    return _downloadable(ExportRecord(*row))


def read(services: Services, download: Download, start: int | None, end: int | None) -> BinaryIO:
    """The bytes ``[start, end)`` of a download's file (all of them by default)."""
    return services.blobs.open(download.blob_key, start, end)


def download_url(services: Services, export: ExportRecord) -> tuple[str, datetime] | None:
    """A token-free download URL of a completed export and when it expires, or None."""
    row = export.row
    if export.status != SUCCEEDED or row.blob_key is None or row.file_expired_at is not None:
        return None
    ttl = services.settings.signed_url_ttl
    if row.expires_at is not None:
        ttl = max(1, min(ttl, int((row.expires_at - utcnow()).total_seconds())))
    query = signing.signed_query(services.secret_key, DOWNLOAD, row.uuid, ttl=ttl)
    expires_at = utcnow() + timedelta(seconds=ttl)
    return (
        f"{services.settings.effective_public_url}/data-tools/api/v1/exports/{row.uuid}/download/?{query}",
        expires_at,
    )


__all__ = ["DOWNLOAD", "Download", "download_url", "open_download", "open_signed_download", "read"]
