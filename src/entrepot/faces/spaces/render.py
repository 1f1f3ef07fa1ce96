"""The JSON of the spaces API (camelCase, as the DCSS clients and the SDK read it)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from entrepot.core.objects.multipart import PartInfo, UploadInfo
from entrepot.core.objects.objects import ObjectInfo, ObjectPage
from entrepot.core.objects.presign import PresignedUrl
from entrepot.core.objects.service import SpaceSummary
from entrepot.core.objects.spaces import SpaceInfo


def iso(moment: datetime) -> str:
    """UTC time as ISO 8601 with milliseconds and a Z."""
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def space_json(space: SpaceInfo, summary: SpaceSummary | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "name": space.name,
        "project": space.project_name,
        "description": space.description,
        "public": space.is_public,
        "createdAt": iso(space.created_at),
        "expiresAt": iso(space.expires_at) if space.expires_at else None,
        "readOnly": space.is_expired(),
    }
    if summary is not None:
        body.update(access=summary.access, objects=summary.objects, bytes=summary.bytes)
    return body


def object_json(info: ObjectInfo) -> dict[str, Any]:
    """An object in the native API and the SDK."""
    return {
        "key": info.key,
        "size": info.size,
        "etag": info.etag,
        "sha256": info.sha256,
        "contentType": info.content_type,
        "lastModified": iso(info.modified_at),
        "metadata": info.metadata,
    }


def listing_json(space: str, prefix: str, delimiter: str | None, page: ObjectPage) -> dict[str, Any]:
    return {
        "space": space,
        "prefix": prefix,
        "delimiter": delimiter,
        "objects": [object_json(o) for o in page.objects],
        "prefixes": page.prefixes,
        "nextCursor": page.next_cursor,
        "isTruncated": page.next_cursor is not None,
    }


def presigned_json(url: PresignedUrl) -> dict[str, Any]:
    return {
        "url": url.url,
        "method": url.method,
        "expiresAt": iso(datetime.fromtimestamp(url.expires_at, UTC)),
    }


def upload_json(upload: UploadInfo, *, parts: bool = False) -> dict[str, Any]:
    body: dict[str, Any] = {
        "uploadId": upload.id,
        "space": upload.space,
        "key": upload.key,
        "contentType": upload.content_type,
        "metadata": upload.metadata,
        "createdAt": iso(upload.created_at),
    }
    if parts:
        body["parts"] = [part_json(p) for p in upload.parts]
    return body


def part_json(part: PartInfo) -> dict[str, Any]:
    return {
        "partNumber": part.part_number,
        "size": part.size,
        "etag": part.etag,
        "uploadedAt": iso(part.created_at),
    }
