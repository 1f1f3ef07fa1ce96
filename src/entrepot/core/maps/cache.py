"""Rendered tiles kept in memory, bounded in bytes, least recently used first out.

A key names everything a tile depends on (``tiles.py``: the layergroup, a stamp of its tables'
last changes and privacy and of the principal it renders for, the layers, z/x/y, format and
scale), so an entry is never stale: after a write the stamp differs, new keys are asked for and
the old entries age out. One cache per ``Services`` (``maps_tile_cache_bytes``; 0: none).
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

if TYPE_CHECKING:
    from entrepot.core.services import Services

V = TypeVar("V")


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
    if limit <= 0:
        return None
    cache = _caches.get(services)
    if cache is None:
        with _lock:
            cache = _caches.get(services)
            if cache is None:
                cache = _caches[services] = LRUBytes(limit)
    return cache
