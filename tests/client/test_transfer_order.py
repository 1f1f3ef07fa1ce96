"""A transfer announces its end (``done``, ``join()``) only after everything the end does.

No server and no sleeps: the transfer jobs below are plain functions, and each check records
what an observer would see at the moment a side effect happens.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator

import pytest

from entrepot.client.data.transfer import TransferHandler, TransferStatus
from entrepot.client.errors import APIError


class _Recorder(logging.Handler):
    """Notes whether the transfer already looked over when its error was logged."""

    def __init__(self, handler: TransferHandler):
        super().__init__(logging.ERROR)
        self.transfer = handler
        self.seen: list[tuple[bool, TransferStatus]] = []
        self.emitted = threading.Event()

    def emit(self, record: logging.LogRecord) -> None:
        self.seen.append((self.transfer.done, self.transfer.status))
        self.emitted.set()


@pytest.fixture
def client_log() -> Iterator[logging.Logger]:
    logger = logging.getLogger("entrepot.client")
    level = logger.level
    logger.setLevel(logging.ERROR)
    yield logger
    logger.setLevel(level)


def _failing(handler: TransferHandler) -> None:
    raise APIError("needs a token with write permission", status=403)


def test_an_unwatched_failure_is_logged_before_the_transfer_is_done(client_log):
    handler = TransferHandler("upload", "private", "log/x.txt")
    recorder = _Recorder(handler)
    client_log.addHandler(recorder)
    try:
        handler.start(_failing, threading.Semaphore(1))  # fire and forget: nobody watches
        assert recorder.emitted.wait(30)
        assert handler._done.wait(30)
    finally:
        client_log.removeHandler(recorder)
    # when the record was emitted, done was not set yet, nor the final status published: a
    # script that polls `done` (or `status`) and then looks at its logs finds the record
    assert recorder.seen == [(False, TransferStatus.ACTIVE)]
    assert handler.status is TransferStatus.ERROR
    with pytest.raises(APIError, match="write permission"):
        handler.join()


def test_the_slot_and_the_callbacks_are_done_before_done(client_log):
    handler = TransferHandler("download", "private", "k")
    at_release: list[bool] = []
    at_final_callback: list[bool] = []

    class Slots(threading.Semaphore):
        def release(self, n: int = 1) -> None:
            at_release.append(handler.done)
            super().release(n)

    def callback(h: TransferHandler) -> None:
        if h.status.done:
            at_final_callback.append(h.done)

    handler.register_callback(callback)
    handler.start(lambda h: b"data", Slots(1))
    assert handler.join(30).result == b"data"
    # a transfer queued behind this one may start as soon as this one is seen finished
    assert at_release == [False]
    assert at_final_callback == [False]
