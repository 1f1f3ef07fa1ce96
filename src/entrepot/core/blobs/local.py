"""The local-directory blob store: one file per key under a root directory.

Writes stream into a temp file next to the target, are fsynced and renamed into place, so a
reader sees either the old blob or the whole new one, and a failed write leaves nothing.
"""

from __future__ import annotations

import contextlib
import errno
import io
import os
import shutil
import uuid
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import BinaryIO

from entrepot.core.blobs.base import (
    CHUNK_SIZE,
    TEMP_PREFIX,
    BlobInfo,
    BlobPage,
    validate_key,
    validate_prefix,
)
from entrepot.core.blobs.digests import Digests
from entrepot.core.errors import Conflict, InvalidInput, NotFound

MAX_SEGMENT_BYTES = 255  # NAME_MAX of every common filesystem: one key segment is one file name


class _RangeReader(io.RawIOBase):
    """A read-only view of bytes ``[start, end)`` of an open file."""

    def __init__(self, f: BinaryIO, start: int, end: int):
        super().__init__()
        self._f = f
        self._f.seek(start)
        self._left = max(0, end - start)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        if self._left <= 0:
            return 0
        view = memoryview(buffer)[: min(len(buffer), self._left)]
        n = self._f.readinto(view)  # type: ignore[attr-defined]
        n = n or 0
        self._left -= n
        return n

    def close(self) -> None:
        if not self.closed:
            self._f.close()
        super().close()


class LocalBlobStore:
    """Blobs as files under ``root``; keys map to relative paths."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    # -- paths ----------------------------------------------------------------------------
    def _file(self, key: str) -> Path:
        segments = validate_key(key).split("/")
        if any(len(segment.encode("utf-8")) > MAX_SEGMENT_BYTES for segment in segments):
            raise InvalidInput(
                f"blob key {key[:60]!r}... has a segment longer than the {MAX_SEGMENT_BYTES} bytes a "
                "file name may have on the local blob store",
                code="blobs.invalidKey",
            )
        return self.root.joinpath(*segments)

    def path(self, key: str) -> Path | None:
        """The local file of ``key`` (whether or not it exists yet)."""
        return self._file(key)

    def _prepare_dir(self, target: Path, key: str) -> None:
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as exc:
            raise Conflict(
                f"blob key {key!r} runs through an existing blob", code="blobs.keyConflict"
            ) from exc
        if target.is_dir():
            raise Conflict(f"blob key {key!r} is a prefix of other blobs", code="blobs.keyConflict")

    # -- writes ---------------------------------------------------------------------------
    def put(self, key: str, chunks: Iterable[bytes] | BinaryIO) -> BlobInfo:
        target = self._file(key)
        tmp = target.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        digests = Digests()
        source: Iterable[bytes] = _read_chunks(chunks) if hasattr(chunks, "read") else chunks  # type: ignore[arg-type]
        try:
            with self._create(tmp, target, key) as out:
                for chunk in source:
                    if not chunk:
                        continue
                    digests.update(chunk)  # hashed on pool threads while this thread writes
                    out.write(chunk)
                out.flush()
                os.fsync(out.fileno())
            digests.wait()
            try:
                os.replace(tmp, target)
            except FileNotFoundError as exc:  # a delete_prefix removed the folder meanwhile
                raise NotFound(f"blob {key!r}: its folder was removed while it was written") from exc
        except BaseException:
            digests.wait()
            with contextlib.suppress(OSError):
                tmp.unlink()
            close = getattr(source, "close", None)
            if close is not None:  # stop a streaming source (e.g. a request body reader) at once
                with contextlib.suppress(Exception):
                    close()
            raise
        _fsync_dir(target.parent)
        return BlobInfo(key, digests.size, digests.md5, digests.sha256, _mtime(target))

    def _create(self, tmp: Path, target: Path, key: str) -> BinaryIO:
        """Open a new temp file next to ``target``, re-creating the folder if a delete pruned it."""
        for _ in range(3):
            self._prepare_dir(target, key)
            try:
                return open(tmp, "xb")  # the caller closes it
            except FileNotFoundError:
                continue  # an empty folder was pruned between mkdir and open
        raise NotFound(f"blob {key!r}: its folder keeps being removed while it is written")

    def put_file(self, key: str, path: Path, *, move: bool = False, digests: bool = True) -> BlobInfo:
        path = Path(path)
        if not path.is_file():
            raise InvalidInput(f"{path} is not a file")
        if not move:
            with open(path, "rb") as f:
                return self.put(key, f)
        target = self._file(key)
        self._prepare_dir(target, key)
        hashed = Digests() if digests else None
        with open(path, "rb") as f:
            while hashed is not None and (chunk := f.read(CHUNK_SIZE)):
                hashed.update(chunk)
            size = os.fstat(f.fileno()).st_size
            os.fsync(f.fileno())
        try:
            os.replace(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            info = self.put_file(key, path, move=False)  # another filesystem: copy, then drop the source
            path.unlink(missing_ok=True)
            return info
        _fsync_dir(target.parent)
        if hashed is None:
            return BlobInfo(key, size, None, None, _mtime(target))
        return BlobInfo(key, hashed.size, hashed.md5, hashed.sha256, _mtime(target))

    def copy(self, src_key: str, dst_key: str) -> BlobInfo:
        """Copy a blob: a hard link when possible (blobs are never changed in place, a put
        replaces the file by rename), else a streamed copy; either way renamed into place."""
        source = self._existing(src_key)
        target = self._file(dst_key)
        if source == target:
            return self._info(dst_key, target)
        self._prepare_dir(target, dst_key)
        tmp = target.parent / f"{TEMP_PREFIX}{uuid.uuid4().hex}"
        try:
            os.link(source, tmp)
        except FileNotFoundError as exc:
            raise NotFound(f"blob {src_key!r} does not exist", code="blobs.notFound") from exc
        except OSError:  # another filesystem, or one without hard links: copy the bytes
            with open(source, "rb") as f:
                return self.put(dst_key, f)
        try:
            os.replace(tmp, target)
        finally:
            # rename() of two links to one file does nothing and leaves tmp: remove it
            with contextlib.suppress(OSError):
                tmp.unlink()
        _fsync_dir(target.parent)
        return self._info(dst_key, target)

    def _existing(self, key: str) -> Path:
        path = self._file(key)
        if not path.is_file():
            raise NotFound(f"blob {key!r} does not exist", code="blobs.notFound")
        return path

    @staticmethod
    def _info(key: str, path: Path) -> BlobInfo:
        st = path.stat()
        return BlobInfo(key, st.st_size, None, None, datetime.fromtimestamp(st.st_mtime, UTC))

    def delete(self, key: str) -> bool:
        target = self._file(key)
        try:
            target.unlink()
        except FileNotFoundError:
            return False
        except IsADirectoryError:
            return False
        parent = target.parent
        while parent != self.root and self.root in parent.parents:  # prune empty directories
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent
        return True

    def delete_prefix(self, prefix: str) -> int:
        """Remove every blob under ``prefix/`` (a whole directory); returns the number removed."""
        base = self._file(prefix.rstrip("/"))
        if not base.is_dir():
            return 0
        count = sum(1 for _, _, files in os.walk(base) for _ in files)
        shutil.rmtree(base, ignore_errors=True)
        return count

    # -- reads ----------------------------------------------------------------------------
    def open(self, key: str, start: int | None = None, end: int | None = None) -> BinaryIO:
        target = self._file(key)
        try:
            f = open(target, "rb")  # noqa: SIM115 - the caller closes it
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise NotFound(f"blob {key!r} does not exist", code="blobs.notFound") from exc
        if start is None and end is None:
            return f
        size = os.fstat(f.fileno()).st_size
        lo = start or 0
        hi = size if end is None else min(end, size)
        if lo < 0 or hi < lo:
            f.close()
            raise InvalidInput(f"invalid byte range {start}-{end} for blob {key!r} of {size} bytes")
        return io.BufferedReader(_RangeReader(f, lo, hi), buffer_size=CHUNK_SIZE)

    def head(self, key: str) -> BlobInfo | None:
        target = self._file(key)
        try:
            st = target.stat()
        except (FileNotFoundError, NotADirectoryError):
            return None
        if not target.is_file():
            return None
        return BlobInfo(key, st.st_size, None, None, datetime.fromtimestamp(st.st_mtime, UTC))

    def list(
        self, prefix: str = "", delimiter: str | None = None, cursor: str | None = None, limit: int = 1000
    ) -> BlobPage:
        validate_prefix(prefix)
        if limit < 1:
            raise InvalidInput("limit must be at least 1")
        if delimiter == "":
            delimiter = None
        base_key = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        base = self._file(base_key) if base_key else self.root
        blobs: list[BlobInfo] = []
        prefixes: list[str] = []
        seen_prefixes: set[str] = set()
        count = 0
        last: str | None = None
        for key, path in self._walk(base, base_key):
            if not key.startswith(prefix):
                continue
            if cursor is not None:
                if key <= cursor:
                    continue
                if delimiter is not None and cursor.endswith(delimiter) and key.startswith(cursor):
                    continue  # the cursor is a common prefix already returned
            if delimiter is not None:
                rest = key[len(prefix) :]
                idx = rest.find(delimiter)
                if idx >= 0:
                    common = prefix + rest[: idx + len(delimiter)]
                    if common in seen_prefixes:
                        continue
                    if count >= limit:
                        return BlobPage(blobs, prefixes, last)
                    seen_prefixes.add(common)
                    prefixes.append(common)
                    count += 1
                    last = common
                    continue
            if count >= limit:
                return BlobPage(blobs, prefixes, last)
            try:
                st = path.stat()
            except FileNotFoundError:
                continue
            blobs.append(BlobInfo(key, st.st_size, None, None, datetime.fromtimestamp(st.st_mtime, UTC)))
            count += 1
            last = key
        return BlobPage(blobs, prefixes, None)

    def _walk(self, base: Path, base_key: str) -> Iterator[tuple[str, Path]]:
        """Every blob under ``base`` as (key, path), sorted by key."""
        if not base.is_dir():
            return iter(())
        found: list[tuple[str, Path]] = []
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames[:] = [d for d in dirnames if not d.startswith(TEMP_PREFIX)]
            rel = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                if name.startswith(TEMP_PREFIX):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                found.append((key, Path(dirpath) / name))
        found.sort(key=lambda item: item[0].encode("utf-8"))
        return iter(found)


def _read_chunks(f: BinaryIO) -> Iterator[bytes]:
    while chunk := f.read(CHUNK_SIZE):
        yield chunk


def _mtime(path: Path) -> datetime:
    return datetime.fromtimestamp(path.stat().st_mtime, UTC)


def _fsync_dir(directory: Path) -> None:
    """Make a rename durable (POSIX); a no-op where directories cannot be opened."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
