"""Transfers that run in the background: ``TransferHandler``, its progress, status and errors.

``Storage.upload`` and ``Storage.download`` return a :class:`TransferHandler` at once; the
bytes move in a background thread (non-daemon: a script that ends right after ``upload(...)``
still finishes the upload before the interpreter exits).
"""

from __future__ import annotations

import enum
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from entrepot.client.errors import APIError

log = logging.getLogger("entrepot.client")

Callback = Callable[["TransferHandler"], Any]
# callbacks fire when the whole percentage changes, when the status changes, and otherwise at
# most this often (seconds) while bytes move, so that the speed stays current
CALLBACK_INTERVAL = 0.25
SPEED_WINDOW = 3.0  # seconds of history behind TransferProgress.speed
_callback_context = threading.local()  # .handlers: the handlers whose callbacks run in this thread


class TransferError(APIError):
    """A transfer failed for a reason that is not an error answer of the server.

    For example a local file that cannot be read or written, or bytes that do not match their
    checksum. ``cause`` is the underlying exception, when there is one.
    """

    def __init__(self, message: str, *, cause: BaseException | None = None, **kwargs: Any):
        super().__init__(message, **kwargs)
        self.cause = cause


class TransferAborted(TransferError):
    """The transfer was stopped by :meth:`TransferHandler.abort`."""


class TransferStatus(enum.Enum):
    """Where a transfer stands; ``FINISHED``, ``ERROR`` and ``ABORTED`` are final."""

    QUEUED = "queued"  # waiting for a free slot (DataClient(max_transfers=...))
    ACTIVE = "active"  # bytes are moving
    FINISHED = "finished"
    ERROR = "error"
    ABORTED = "aborted"

    @property
    def done(self) -> bool:
        return self in (TransferStatus.FINISHED, TransferStatus.ERROR, TransferStatus.ABORTED)


@dataclass(frozen=True)
class TransferProgress:
    """A snapshot of a transfer's progress.

    ``total`` is the size in bytes (None while unknown, e.g. before a download's first
    answer); ``transferred`` counts bytes done, including the parts a resumed upload found on
    the server already; ``speed`` is bytes per second over the last few seconds (the average
    of the whole transfer once it is over).
    """

    total: int | None
    transferred: int
    speed: float

    @property
    def percentage(self) -> int:
        """Whole percent done, 0-100 (0 while the size is unknown, 100 for an empty object)."""
        if self.total is None:
            return 0
        if self.total <= 0:
            return 100
        return max(0, min(100, self.transferred * 100 // self.total))

    def __str__(self) -> str:
        total = "?" if self.total is None else str(self.total)
        return f"{self.percentage}% ({self.transferred}/{total} bytes, {self.speed / 1e6:.1f} MB/s)"


class TransferHandler:
    """Monitors and controls one upload or download running in the background.

    - ``progress``: a :class:`TransferProgress` snapshot; ``status``: a :class:`TransferStatus`.
    - ``register_callback(cb)``: ``cb(handler)`` runs when the percentage or the status changes
      (and every ~0.25 s while bytes move), once more when the transfer ends, and at once if
      the transfer has already ended. Callbacks of one handler never run concurrently; they
      run in the transfer's threads, so keep them short and do not ``join()`` from one.
    - ``join(timeout=None)``: wait for the end and raise what went wrong (see below).
    - ``abort()``: stop the transfer; ``join()`` then raises :class:`TransferAborted`.
    - ``data``: the downloaded bytes of a download to memory; ``result``: the uploaded object
      (an ``ObjectItem``), the written path, or the bytes.
    - ``error``: the exception of a failed transfer, else None.

    A failed transfer that nobody watches (no callback registered, nobody in ``join()``) also
    logs its error on the ``entrepot.client`` logger, so a fire-and-forget upload never fails
    silently.
    """

    def __init__(self, kind: str, space: str, key: str, *, total: int | None = None):
        self.kind = kind  # "upload" or "download"
        self.space = space
        self.key = key
        self._lock = threading.Lock()
        self._dispatch = threading.RLock()  # one callback run at a time, in order
        self._callbacks: list[Callback] = []
        self._final_dispatched = False
        self._watched = False
        self._status = TransferStatus.QUEUED
        self._total = total
        self._transferred = 0
        self._moved = 0  # bytes that really crossed the network (for the speed)
        self._samples: deque[tuple[float, int]] = deque()
        self._started: float | None = None
        self._ended: float | None = None
        self._last_pct: int | None = None
        self._last_fire = 0.0
        self._error: BaseException | None = None
        self._result: Any = None
        self._abort = threading.Event()
        self.keep_parts = False  # abort(keep_parts=True): leave a multipart upload resumable
        self._done = threading.Event()
        self._thread: threading.Thread | None = None

    # -- public ----------------------------------------------------------------------------
    @property
    def progress(self) -> TransferProgress:
        with self._lock:
            return self._snapshot()

    @property
    def status(self) -> TransferStatus:
        return self._status

    @property
    def done(self) -> bool:
        """True once the transfer has ended (finished, failed or aborted)."""
        return self._done.is_set()

    @property
    def error(self) -> BaseException | None:
        """What made the transfer fail or stop (None while running and after success)."""
        self._watched = True
        return self._error

    @property
    def result(self) -> Any:
        """The uploaded ``ObjectItem``, the downloaded file's ``Path`` or bytes; None until finished."""
        return self._result

    @property
    def data(self) -> bytes | None:
        """The bytes of a finished download to memory (None otherwise)."""
        return self._result if isinstance(self._result, bytes) else None

    def register_callback(self, callback: Callback) -> None:
        """Call ``callback(handler)`` on progress and status changes (see the class docs)."""
        with self._lock:
            self._watched = True
            late = self._final_dispatched
            if not late:
                self._callbacks.append(callback)
        if late:  # the transfer is over: report its final state once
            with self._dispatch:
                self._call(callback)

    def unregister_callback(self, callback: Callback) -> None:
        with self._lock:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

    def join(self, timeout: float | None = None) -> TransferHandler:
        """Wait until the transfer ends and return the handler; raise if it did not finish.

        Raises the error that ended it: the typed ``APIError`` a synchronous call would raise
        (``InvalidToken``, ``PermissionDenied``, ``NotFound``, ``ConnectionFailed``, ...),
        :class:`TransferAborted` after :meth:`abort`, :class:`TransferError` for anything else
        (a local file that cannot be read or written, a checksum mismatch). Raises
        ``TimeoutError`` if ``timeout`` seconds pass first (the transfer goes on).
        """
        own_thread = self._thread is not None and threading.current_thread() is self._thread
        if not self._done.is_set() and (own_thread or self._in_callback()):
            raise RuntimeError(
                "join() would wait forever here: it was called from the transfer's own callback"
            )
        self._watched = True
        if not self._done.wait(timeout):
            raise TimeoutError(
                f"the {self.kind} of {self.space}:{self.key} is still running after {timeout} s"
            )
        if self._error is not None:
            raise self._error
        return self

    def abort(self, block: bool = False, *, keep_parts: bool = False) -> None:
        """Stop the transfer (no effect once it has ended); ``block`` waits until it has stopped.

        An aborted upload leaves no object (an existing object under the key stays as it
        was); an aborted download leaves no file. A multipart upload's parts are deleted on
        the server too, unless ``keep_parts`` is true: then the next upload of the same file to
        the same key sends only the missing parts.
        """
        with self._lock:
            if self._done.is_set():
                return
            self.keep_parts = keep_parts
            self._abort.set()
        if block and not self._in_callback():  # a callback cannot wait for its own transfer
            self._done.wait()

    def __repr__(self) -> str:
        return f"<TransferHandler {self.kind} {self.space}:{self.key} {self._status.value} {self.progress}>"

    # -- for the transfer jobs ---------------------------------------------------------------
    @property
    def aborted(self) -> bool:
        return self._abort.is_set()

    def check_abort(self) -> None:
        if self._abort.is_set():
            raise TransferAborted(f"the {self.kind} of {self.space}:{self.key} was aborted")

    def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a retry backoff), waking up early to raise if the transfer is aborted."""
        if self._abort.wait(seconds):
            self.check_abort()

    def set_total(self, total: int | None) -> None:
        with self._lock:
            self._total = total

    def advance(self, n: int, *, moved: bool = True) -> None:
        """Count ``n`` bytes done (negative: an attempt that failed); ``moved=False`` for bytes
        that did not cross the network (parts found on the server)."""
        now = time.monotonic()
        with self._lock:
            self._transferred += n
            if moved and n > 0:
                self._moved += n
                self._samples.append((now, self._moved))
                while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW:
                    self._samples.popleft()
            pct = self._snapshot().percentage
            fire = pct != self._last_pct or now - self._last_fire >= CALLBACK_INTERVAL
        if fire:
            self._fire()

    def start(self, job: Callable[[TransferHandler], Any], slots: threading.Semaphore) -> None:
        """Run ``job(handler)`` in a new thread once one of ``slots`` is free."""
        self._thread = threading.Thread(
            target=self._run, args=(job, slots), name=f"entrepot-{self.kind}", daemon=False
        )
        self._thread.start()

    # -- internals ---------------------------------------------------------------------------
    def _run(self, job: Callable[[TransferHandler], Any], slots: threading.Semaphore) -> None:
        acquired = False
        result: Any = None
        error: BaseException | None = None
        status = TransferStatus.FINISHED
        try:
            while not (acquired := slots.acquire(timeout=0.1)):
                self.check_abort()
            self.check_abort()
            with self._lock:
                self._status = TransferStatus.ACTIVE
                self._started = time.monotonic()
                self._samples.append((self._started, 0))
            self._fire()
            result = job(self)
        except TransferAborted as exc:
            status, error = TransferStatus.ABORTED, exc
        except APIError as exc:
            if self._abort.is_set():  # failed because it was being stopped
                status, error = TransferStatus.ABORTED, self._aborted_error(exc)
            else:
                status, error = TransferStatus.ERROR, exc
        except BaseException as exc:  # reported through join() and .error
            if self._abort.is_set():
                status, error = TransferStatus.ABORTED, self._aborted_error(exc)
            else:
                detail = f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
                error = TransferError(
                    f"the {self.kind} of {self.space}:{self.key} failed: {detail}", cause=exc
                )
                error.__cause__ = exc
                status = TransferStatus.ERROR
        finally:
            if acquired:  # free before the end is announced: a transfer started then may take it
                slots.release()
        self._finish(status, error=error, result=result)

    def _aborted_error(self, cause: BaseException) -> TransferAborted:
        error = TransferAborted(f"the {self.kind} of {self.space}:{self.key} was aborted", cause=cause)
        error.__cause__ = cause
        return error

    def _finish(
        self, status: TransferStatus, *, error: BaseException | None = None, result: Any = None
    ) -> None:
        """End the transfer, announcing it only once its effects are visible.

        In order: the outcome is stored, an unwatched failure is logged, the final status is
        published and the callbacks run; ``_done`` (``done``, ``join()``, ``close()``) is set
        last, so whoever learns that the transfer ended also sees its log record and callbacks.
        """
        with self._lock:
            self._ended = time.monotonic()
            self._error = error
            self._result = result
            watched = self._watched or bool(self._callbacks)
        if error is not None and status is TransferStatus.ERROR and not watched:
            log.error("%s", error)
        with self._lock:
            self._status = status
            callbacks = list(self._callbacks)
            self._final_dispatched = True
        with self._dispatch:
            for callback in callbacks:
                self._call(callback)
        self._done.set()

    def _snapshot(self) -> TransferProgress:
        # caller holds self._lock
        if self._ended is not None and self._started is not None:
            elapsed = self._ended - self._started
            speed = self._moved / elapsed if elapsed > 0 else 0.0
        elif len(self._samples) >= 2:
            (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
            speed = (b1 - b0) / (t1 - t0) if t1 > t0 else 0.0
        else:
            speed = 0.0
        return TransferProgress(self._total, self._transferred, speed)

    def _fire(self) -> None:
        with self._lock:
            if self._final_dispatched:
                return
            callbacks = list(self._callbacks)
            self._last_pct = self._snapshot().percentage
            self._last_fire = time.monotonic()
        if not callbacks:
            return
        with self._dispatch:
            for callback in callbacks:
                self._call(callback)

    def _in_callback(self) -> bool:
        return self in getattr(_callback_context, "handlers", ())

    def _call(self, callback: Callback) -> None:
        handlers: list[TransferHandler] = _callback_context.__dict__.setdefault("handlers", [])
        handlers.append(self)
        try:
            callback(self)
        except Exception:
            log.exception("a transfer callback of %s:%s raised; the transfer goes on", self.space, self.key)
        finally:
            handlers.pop()
