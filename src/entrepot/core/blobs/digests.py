"""MD5 and SHA-256 of a byte stream, computed beside the code that moves the bytes.

hashlib releases the GIL while it hashes a large buffer, so the two digests of a chunk run on
pool threads while the caller writes that chunk and fetches the next one: an upload costs
about the slowest of (receive, write, MD5) instead of their sum. Small chunks are hashed
inline, where a thread hop would cost more than it saves.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import Future, ThreadPoolExecutor

_POOL = ThreadPoolExecutor(max_workers=4, thread_name_prefix="entrepot-digest")
PARALLEL_THRESHOLD = 256 * 1024


class Digests:
    """Running MD5 and SHA-256 (hex) and byte count of the chunks passed to :meth:`update`."""

    def __init__(self) -> None:
        self._md5 = hashlib.md5(usedforsecurity=False)
        self._sha = hashlib.sha256()
        self._pending: list[Future[None]] = []
        self.size = 0

    def update(self, chunk: bytes) -> None:
        """Add a chunk; the previous chunk's hashing finishes first, so order is kept."""
        self.wait()
        self.size += len(chunk)
        if len(chunk) >= PARALLEL_THRESHOLD:
            self._pending = [_POOL.submit(self._md5.update, chunk), _POOL.submit(self._sha.update, chunk)]
        else:
            self._md5.update(chunk)
            self._sha.update(chunk)

    def wait(self) -> None:
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    @property
    def md5(self) -> str:
        self.wait()
        return self._md5.hexdigest()

    @property
    def sha256(self) -> str:
        self.wait()
        return self._sha.hexdigest()
