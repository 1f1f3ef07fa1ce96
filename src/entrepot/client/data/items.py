"""What a space's listings and heads return: ``ObjectItem`` and ``FolderListing``."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

META_PREFIX = "x-entrepot-meta-"


@dataclass(frozen=True)
class ObjectItem:
    """One object: its key, size, ETag, SHA-256, content type, modification time and metadata.

    ``etag`` is the MD5 of the bytes (hex), or ``<md5 of the part MD5s>-<parts>`` for an
    object uploaded in parts. ``sha256`` is None for an object uploaded in parts (the server checked
    each part's MD5, and the ETag covers them).
    """

    key: str
    size: int
    etag: str
    content_type: str
    last_modified: datetime | None
    sha256: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The last segment of the key."""
        return self.key.rsplit("/", 1)[-1]

    @classmethod
    def from_json(cls, body: dict[str, Any]) -> ObjectItem:
        modified = body.get("lastModified")
        return cls(
            key=body["key"],
            size=int(body["size"]),
            etag=str(body.get("etag") or ""),
            content_type=str(body.get("contentType") or ""),
            last_modified=datetime.fromisoformat(modified.replace("Z", "+00:00")) if modified else None,
            sha256=body.get("sha256"),
            metadata=dict(body.get("metadata") or {}),
        )

    @classmethod
    def from_headers(cls, key: str, headers: httpx.Headers) -> ObjectItem:
        modified = headers.get("last-modified")
        try:
            when = parsedate_to_datetime(modified) if modified else None
        except (TypeError, ValueError):
            when = None
        return cls(
            key=key,
            size=int(headers.get("content-length") or 0),
            etag=(headers.get("etag") or "").removeprefix("W/").strip('"'),
            content_type=headers.get("content-type") or "",
            last_modified=when,
            sha256=headers.get("x-entrepot-content-sha256"),
            metadata={
                name.lower()[len(META_PREFIX) :]: value
                for name, value in headers.items()
                if name.lower().startswith(META_PREFIX)
            },
        )

    def to_json(self) -> dict[str, Any]:
        """The server's JSON shape of the object (camelCase keys)."""
        modified = self.last_modified
        return {
            "key": self.key,
            "size": self.size,
            "etag": self.etag,
            "sha256": self.sha256,
            "contentType": self.content_type,
            "lastModified": modified.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
            if modified
            else None,
            "metadata": dict(self.metadata),
        }


@dataclass(frozen=True)
class FolderListing:
    """One level of a space: ``folders`` (prefixes ending in '/') and the ``objects`` directly in it."""

    prefix: str
    folders: list[str]
    objects: list[ObjectItem]
