"""The tile caches: the bytes-bounded LRU in memory and the files on disk."""

from __future__ import annotations

import os
import threading
from pathlib import Path

from entrepot.core.maps.cache import DiskCache, LRUBytes


def test_lru_keeps_the_most_recent_within_its_bytes() -> None:
    cache: LRUBytes[str] = LRUBytes(100)
    cache.put("a", "A", 40)
    cache.put("b", "B", 40)
    assert cache.get("a") == "A"  # a is now the most recent
    cache.put("c", "C", 40)  # over 100: the least recent (b) goes
    assert cache.get("b") is None and cache.get("a") == "A" and cache.get("c") == "C"
    assert cache.used == 80 and len(cache) == 2
    cache.put("big", "X", 101)  # larger than the whole cache: not kept, nothing evicted
    assert cache.get("big") is None and len(cache) == 2
    cache.put("a", "A2", 10)  # replacing counts the new size only
    assert cache.get("a") == "A2" and cache.used == 50


def test_lru_is_safe_across_threads() -> None:
    cache: LRUBytes[int] = LRUBytes(1000)

    def work(n: int) -> None:
        for i in range(2000):
            cache.put((n, i % 50), i, 7)
            cache.get((n, (i + 1) % 50))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert cache.used == 7 * len(cache) <= 1000


def test_disk_cache_round_trips_and_evicts_the_least_recent(tmp_path: Path) -> None:
    disk = DiskCache(tmp_path / "tiles", 1000)
    assert disk.get(("lg", 1)) is None
    for i in range(4):
        disk.put(("lg", i), bytes([i]) * 300)
        path = disk._path(("lg", i))
        os.utime(path, (1_000 + i, 1_000 + i))  # written in order, a second apart
    # 1,200 bytes > 1,000: evicted down to 900 at the last put, oldest first
    assert disk.get(("lg", 0)) is None
    assert disk.get(("lg", 3)) == bytes([3]) * 300
    assert sum(f.stat().st_size for f in (tmp_path / "tiles").glob("*/*")) <= 1000
    # no temporary file is left behind
    assert not [f for f in (tmp_path / "tiles").glob("*/.*")]


def test_disk_cache_counts_what_other_processes_wrote(tmp_path: Path) -> None:
    root = tmp_path / "tiles"
    first, second = DiskCache(root, 1000), DiskCache(root, 1000)
    for i in range(3):
        first.put(("a", i), b"x" * 300)
    second.put(("b", 0), b"y" * 300)  # its first put scans: 1,200 bytes, over the limit
    assert sum(f.stat().st_size for f in root.glob("*/*")) <= 1000
    assert second.get(("b", 0)) == b"y" * 300


def test_a_disk_cache_that_cannot_write_only_misses(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    disk = DiskCache(blocker / "tiles", 1000)
    disk.put("k", b"data")  # no error: the tile is simply not kept
    assert disk.get("k") is None
