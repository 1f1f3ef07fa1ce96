"""Bounded extraction of zip archives an import receives.

Every member is checked before a byte is written: its name must stay inside the target
directory (no ``..``, no absolute path, no drive letter), its declared size counts against
``max_bytes``, and the bytes actually written are counted again while copying (a member that
lies about its size is caught), so a zip bomb costs at most ``max_bytes`` of disk.
Encrypted members are refused; directories and macOS resource forks (``__MACOSX/``) are skipped.
"""

from __future__ import annotations

import zipfile
from pathlib import Path, PurePosixPath

from entrepot.core import errors as E

CHUNK = 1024 * 1024
MAX_MEMBERS = 10_000


def _safe_name(name: str) -> PurePosixPath | None:
    """The member's relative path, or None when it would leave the target directory."""
    normalized = name.replace("\\", "/")
    path = PurePosixPath(normalized)
    if not path.parts or path.is_absolute() or ":" in path.parts[0]:
        return None
    if any(part in ("..", ".") for part in path.parts):
        return None
    return path


def extract(archive: Path, target: Path, *, max_bytes: int) -> list[Path]:
    """Extract the zip ``archive`` into ``target``; the files written, in archive order."""
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise E.InvalidInput(f"the zip archive cannot be read: {exc}", code="imports.badArchive") from None
    written: list[Path] = []
    total = 0
    with zf:
        members = zf.infolist()
        if len(members) > MAX_MEMBERS:
            raise E.InvalidInput(
                f"the zip archive has {len(members):,} members; at most {MAX_MEMBERS:,} are read",
                code="imports.badArchive",
            )
        for info in members:
            relative = _safe_name(info.filename)
            if relative is None:
                raise E.InvalidInput(
                    f"the zip archive's member {info.filename!r} would be written outside the archive",
                    code="imports.badArchive",
                )
            if info.is_dir() or relative.parts[0] == "__MACOSX" or relative.name.startswith("._"):
                continue
            if info.flag_bits & 0x1:
                raise E.InvalidInput(
                    f"the zip archive's member {info.filename!r} is password protected",
                    code="imports.passwordProtected",
                )
            total += info.file_size
            if total > max_bytes:
                raise _too_large(max_bytes)
            dest = target.joinpath(*relative.parts)
            dest.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, dest.open("wb") as out:
                    size = 0
                    while chunk := src.read(CHUNK):
                        size += len(chunk)
                        if size > info.file_size or total - info.file_size + size > max_bytes:
                            raise _too_large(max_bytes)
                        out.write(chunk)
            except (zipfile.BadZipFile, OSError, EOFError, NotImplementedError) as exc:
                raise E.InvalidInput(
                    f"the zip archive's member {info.filename!r} cannot be extracted: {exc}",
                    code="imports.badArchive",
                ) from None
            written.append(dest)
    return written


def _too_large(limit: int) -> E.PayloadTooLarge:
    return E.PayloadTooLarge(
        f"the zip archive inflates to more than {limit:,} bytes (setting import_max_inflated_bytes)",
        code="imports.inflatedTooLarge",
    )
