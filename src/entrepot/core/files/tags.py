"""File tags: what a tag may be, adding and removing one, and the filter a listing applies."""

from __future__ import annotations

from collections.abc import Iterable, Set
from typing import TYPE_CHECKING

from entrepot.core.catalog import File
from entrepot.core.errors import InvalidInput
from entrepot.core.files.query import TagPredicate, parse_query
from entrepot.core.files.rows import not_found

if TYPE_CHECKING:
    from entrepot.core.services import Services

MAX_TAG_LENGTH = 256


def clean_tags(tags: Iterable[str]) -> list[str]:
    """Tags stripped, without blanks and duplicates (first occurrence kept); a bad tag is refused."""
    out: list[str] = []
    for tag in tags:
        tag = str(tag).strip()
        if not tag:
            continue
        if len(tag) > MAX_TAG_LENGTH or any(ord(c) < 32 for c in tag):
            raise InvalidInput(
                f"invalid tag {tag[:40]!r}: tags are up to {MAX_TAG_LENGTH} printable characters"
            )
        if tag not in out:
            out.append(tag)
    return out


def tag_filter(tags: Iterable[str], q: str | None) -> TagPredicate | None:
    """What a listing keeps: files with any of ``tags`` and matching ``q``; None keeps everything."""
    wanted = set(clean_tags(tags))
    matches_q = parse_query(q) if q else None
    if not wanted and matches_q is None:
        return None

    def keep(file_tags: Set[str]) -> bool:
        if wanted and not (wanted & file_tags):
            return False
        return matches_q is None or matches_q(file_tags)

    return keep


def tag_file(services: Services, file_id: int, tag: str) -> None:
    """Add a clean tag (no-op when it is there already), in one transaction."""
    with services.catalog.session() as s:
        file = s.get(File, file_id)
        if file is None:
            raise not_found(file_id)
        if tag not in (file.tags or []):
            file.tags = [*(file.tags or []), tag]


def untag_file(services: Services, file_id: int, tag: str) -> None:
    """Remove a tag (no-op when it is not there), in one transaction."""
    with services.catalog.session() as s:
        file = s.get(File, file_id)
        if file is None:
            raise not_found(file_id)
        file.tags = [t for t in (file.tags or []) if t != tag]
