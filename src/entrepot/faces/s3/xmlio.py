"""S3's XML: rendering replies, and bounded parsers for the three request bodies (Delete,
CompleteMultipartUpload, CreateBucketConfiguration).

Parsing uses ``xml.etree.ElementTree`` (expat bounds entity expansion and never fetches
external entities) and refuses any document type declaration outright. Look-ups ignore the
namespace: clients send S3's, another, or none.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote
from xml.sax.saxutils import escape

from entrepot.faces.s3.errors import s3_error

NAMESPACE = "http://s3.amazonaws.com/doc/2006-03-01/"
HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
MAX_DELETE_OBJECTS = 1000
MAX_COMPLETE_PARTS = 10_000


# -- rendering -------------------------------------------------------------------------------------
def text(value: object) -> str:
    """XML character data (``& < >`` escaped; quotes may stay literal, as S3 writes ETags)."""
    return escape(str(value))


def url_encode(value: str) -> str:
    """``encoding-type=url``: every byte outside ``A-Za-z0-9-_.~/`` as ``%XX`` (a ``+`` as ``%2B``)."""
    return quote(value.encode("utf-8"), safe="-_.~/")


def iso(moment: datetime) -> str:
    """S3's XML time: ISO 8601 UTC with zero milliseconds (``2025-06-01T12:00:00.000Z``)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def element(name: str, value: object) -> str:
    return f"<{name}>{text(value)}</{name}>"


def document(root: str, parts: Iterable[str], *, namespace: bool = True) -> bytes:
    ns = f' xmlns="{NAMESPACE}"' if namespace else ""
    return (HEADER + f"<{root}{ns}>" + "".join(parts) + f"</{root}>").encode("utf-8")


# -- parsing ---------------------------------------------------------------------------------------
def parse(body: bytes, root: str) -> ET.Element:
    """The document's root element, which must be ``root``; ``MalformedXML`` otherwise."""
    if b"<!DOCTYPE" in body.upper() or b"<!ENTITY" in body.upper():
        raise s3_error("MalformedXML", "document type declarations are not allowed in S3 request bodies")
    try:
        element_ = ET.fromstring(body)
    except ET.ParseError as exc:
        raise s3_error("MalformedXML", f"the XML you provided was not well-formed: {exc}") from None
    if _local(element_.tag) != root:
        raise s3_error(
            "MalformedXML", f"the XML document's root must be <{root}>, not <{_local(element_.tag)}>"
        )
    return element_


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _children(parent: ET.Element, name: str) -> list[ET.Element]:
    return [child for child in parent if _local(child.tag) == name]


def _child_text(parent: ET.Element, name: str) -> str | None:
    found = _children(parent, name)
    if not found:
        return None
    return found[0].text or ""


@dataclass(frozen=True)
class DeleteRequest:
    keys: list[str]
    quiet: bool


def parse_delete(body: bytes) -> DeleteRequest:
    root = parse(body, "Delete")
    objects = _children(root, "Object")
    if not objects:
        raise s3_error("MalformedXML", "a Delete request names at least one <Object>")
    if len(objects) > MAX_DELETE_OBJECTS:
        raise s3_error("MalformedXML", f"a Delete request names at most {MAX_DELETE_OBJECTS} objects")
    keys = []
    for obj in objects:
        key = _child_text(obj, "Key")
        if key is None:
            raise s3_error("MalformedXML", "every <Object> of a Delete request needs a <Key>")
        version = _child_text(obj, "VersionId")
        if version not in (None, "", "null"):
            raise s3_error("NotImplemented", "object versions are not supported; versioning is never enabled")
        keys.append(key)
    quiet = (_child_text(root, "Quiet") or "false").strip().lower() == "true"
    return DeleteRequest(keys, quiet)


@dataclass(frozen=True)
class CompletedPart:
    number: int
    etag: str
    checksums: dict[str, str]  # algorithm (lowercase) → base64, as listed


def parse_complete(body: bytes) -> list[CompletedPart]:
    root = parse(body, "CompleteMultipartUpload")
    parts = _children(root, "Part")
    if not parts:
        raise s3_error("MalformedXML", "a CompleteMultipartUpload request lists at least one <Part>")
    if len(parts) > MAX_COMPLETE_PARTS:
        raise s3_error("MalformedXML", f"a multipart upload has at most {MAX_COMPLETE_PARTS} parts")
    out = []
    for part in parts:
        number_text = (_child_text(part, "PartNumber") or "").strip()
        etag = _child_text(part, "ETag")
        if not number_text.isdigit() or len(number_text) > 6 or etag is None:
            raise s3_error("MalformedXML", "every <Part> needs a numeric <PartNumber> and an <ETag>")
        checksums = {}
        for child in part:
            name = _local(child.tag)
            if name.startswith("Checksum") and name != "ChecksumType" and child.text:
                checksums[name.removeprefix("Checksum").lower()] = child.text.strip()
        out.append(CompletedPart(int(number_text), etag.strip(), checksums))
    return out


def parse_create_bucket(body: bytes) -> str | None:
    """The LocationConstraint of a CreateBucketConfiguration (None when absent or empty)."""
    if not body.strip():
        return None
    root = parse(body, "CreateBucketConfiguration")
    location = _child_text(root, "LocationConstraint")
    return location.strip() if location else None
