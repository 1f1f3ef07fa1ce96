"""Rendered tiles kept in memory and on disk, each bounded in bytes, least recently used first out.

A key names everything a tile depends on (``tiles.py``: the layergroup, a stamp of its tables'
last changes and privacy and of the principal it renders for, the layers, z/x/y, format and
scale), so an entry is never stale: after a write the stamp differs, new keys are asked for and
the old entries age out. One memory cache per ``Services`` (``maps_tile_cache_bytes``) in
front of one disk cache under ``<data dir>/tile-cache`` (``maps_tile_cache_disk_bytes``);
0 turns either off.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import threading
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Callable, Hashable
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from entrepot.core.services import Services

V = TypeVar("V")
C = TypeVar("C")


class LRUBytes(Generic[V]):
    """A thread-safe LRU map whose entries weigh ``size(value)`` bytes, at most ``limit`` in all."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self._entries: OrderedDict[Hashable, tuple[V, int]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable) -> V | None:
        with self._lock:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return entry[0]

    def put(self, key: Hashable, value: V, size: int) -> None:
        if size > self.limit:
            return
        with self._lock:
            old = self._entries.pop(key, None)
            if old is not None:
                self.used -= old[1]
            self._entries[key] = (value, size)
            self.used += size
            while self.used > self.limit:
                _, (_, dropped) = self._entries.popitem(last=False)
                self.used -= dropped

    def __len__(self) -> int:
        return len(self._entries)


_caches: weakref.WeakKeyDictionary[Services, LRUBytes[object]] = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def tile_cache(services: Services) -> LRUBytes[object] | None:
    """This process's tile cache for ``services`` (None when ``maps_tile_cache_bytes`` is 0)."""
    limit = services.settings.maps_tile_cache_bytes
    return one(_caches, services, lambda: LRUBytes(limit)) if limit > 0 else None


def one(caches: weakref.WeakKeyDictionary[Services, C], services: Services, make: Callable[[], C]) -> C:
    """The cache of ``services`` in ``caches``, made by ``make`` the first time (once, across threads)."""
    cache = caches.get(services)
    if cache is None:
        with _lock:
            cache = caches.get(services)
            if cache is None:
                cache = caches[services] = make()
    return cache


class DiskCache:
    """Tiles as files under ``root`` (one per key, named by the key's SHA-256), at most
    ``limit`` bytes: past it, the files least recently written or read go first.

    Shared by the processes of one machine (``entrepot serve`` and its workers); a file is
    written whole under a temporary name and renamed, so a reader never sees half a tile. The
    size is counted per process from a scan at start and the files it writes; every
    ``limit / 8`` bytes written it scans again, so other processes' files are counted too.
    """

    def __init__(self, root: Path, limit: int) -> None:
        self.root = root
        self.limit = limit
        self._lock = threading.Lock()
        self._used: int | None = None
        self._since_scan = 0

    def _path(self, key: Hashable) -> Path:
        digest = hashlib.sha256(repr(key).encode()).hexdigest()
        return self.root / digest[:2] / digest

    def get(self, key: Hashable) -> bytes | None:
        path = self._path(key)
        try:
            data = path.read_bytes()
            os.utime(path)  # recently used: evicted last
        except OSError:
            return None
        return data

    def put(self, key: Hashable, data: bytes) -> None:
        if len(data) > self.limit:
            return
        path = self._path(key)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}")
            tmp.write_bytes(data)
            os.replace(tmp, path)
        except OSError:
            return  # a full or read-only disk only costs the cache
        with self._lock:
            if self._used is None or self._since_scan > self.limit // 8:
                self._used = self._scan()
                self._since_scan = 0
            self._used += len(data)
            self._since_scan += len(data)
            if self._used > self.limit:
                self._used = self._evict(int(self.limit * 0.9))

    def _files(self) -> list[tuple[float, int, Path]]:
        found = []
        for path in self.root.glob("*/*"):
            try:
                st = path.stat()
            except OSError:
                continue
            found.append((st.st_mtime, st.st_size, path))
        return found

    def _scan(self) -> int:
        return sum(size for _, size, _ in self._files())

    def _evict(self, target: int) -> int:
        files = sorted(self._files())
        used = sum(size for _, size, _ in files)
        for _, size, path in files:
            if used <= target:
                break
            with contextlib.suppress(OSError):
                path.unlink()
                used -= size
        return used


_disks: weakref.WeakKeyDictionary[Services, DiskCache] = weakref.WeakKeyDictionary()


def disk_cache(services: Services) -> DiskCache | None:
    """This process's disk tile cache for ``services`` (None when ``maps_tile_cache_disk_bytes`` is 0)."""
    limit = services.settings.maps_tile_cache_disk_bytes
    root = services.settings.data_dir / "tile-cache"
    return one(_disks, services, lambda: DiskCache(root, limit)) if limit > 0 else None
