"""Object spaces through the SDK: ``DataClient`` → ``Storage`` → ``TransferHandler``.

The shapes follow Duckietown's ``dt_data_api`` (DCSS)::

    from entrepot import DataClient

    client = DataClient()                      # anonymous: public spaces only
    client = DataClient("TOKEN", url="https://data.example.org")
    storage = client.storage("public")
    storage.download("my_dir/my_file.txt", "./my_file.txt")
    transfer = storage.upload("./big.bin", "big.bin")
    transfer.register_callback(lambda h: print(f"{h.progress.percentage}%"))
    transfer.join()

The server URL is ``url=``, else ``ENTREPOT_URL``, else ``http://127.0.0.1:8000``. The project
is ``project=``, else the one the token belongs to, else ``ENTREPOT_PROJECT``, else
``default``. The token is only what you pass: ``DataClient()`` is anonymous even when
``ENTREPOT_TOKEN`` is set.
"""

from __future__ import annotations

import os
import re
import ssl
import threading
import weakref
from collections.abc import Callable
from datetime import datetime
from types import TracebackType
from typing import Any

import httpx

from entrepot.client._http import URL_ENV, USER_AGENT, RetryPolicy
from entrepot.client.data._transport import SpacesTransport
from entrepot.client.data.items import FolderListing, ObjectItem
from entrepot.client.data.storage import Storage
from entrepot.client.data.transfer import (
    Callback,
    TransferAborted,
    TransferError,
    TransferHandler,
    TransferProgress,
    TransferStatus,
)
from entrepot.client.errors import APIError, InvalidToken

__all__ = [
    "APIError",
    "DataClient",
    "FolderListing",
    "InvalidToken",
    "ObjectItem",
    "Storage",
    "TransferAborted",
    "TransferError",
    "TransferHandler",
    "TransferProgress",
    "TransferStatus",
]

PROJECT_ENV = "ENTREPOT_PROJECT"
DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_PROJECT = "default"
MIB = 1024 * 1024
_TOKEN_RE = re.compile(r"^(\d{1,18})-(\d{1,18})-([A-Za-z0-9]{20,128})\Z")


class DataClient:
    """A connection to the object spaces of one project, anonymous or with a token.

    ``token``: an entrepot token (``<project id>-<token id>-<secret>``), or None for anonymous
    access (public spaces, read only). A token that is not of that form raises
    :class:`InvalidToken` at once; one the server rejects raises it on first use.

    Transfers: uploads larger than ``multipart_threshold`` bytes go in parts of ``part_size``
    bytes (raised as needed to stay within 10,000 parts), ``parallel_parts`` at a time; at
    most ``max_transfers`` transfers of this client run at once (the others wait as QUEUED).
    ``timeout``, ``connect_timeout``, ``retries``, ``backoff``, ``verify`` and
    ``http_transport`` are as for :class:`entrepot.client.Client`; transfers retry a failed
    request (connection errors, 5xx, 429) ``retries`` times, and a download that keeps making
    progress resumes as often as its connection drops.
    """

    def __init__(
        self,
        token: str | None = None,
        *,
        url: str | None = None,
        project: str | int | None = None,
        timeout: float | httpx.Timeout = 60.0,
        connect_timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        verify: bool | str | ssl.SSLContext = True,
        multipart_threshold: int = 16 * MIB,
        part_size: int = 8 * MIB,
        parallel_parts: int = 4,
        max_transfers: int = 4,
        http_transport: httpx.BaseTransport | None = None,
    ):
        token = token.strip() if token else None
        token_project: str | None = None
        if token is not None:
            m = _TOKEN_RE.match(token)
            if m is None:
                raise InvalidToken(
                    "this is not an entrepot token (expected <project id>-<token id>-<secret>)",
                    code="client.tokenMalformed",
                )
            token_project = m.group(1)
        if retries < 0:
            raise ValueError("retries must not be negative")
        if part_size < 1 or multipart_threshold < 0 or parallel_parts < 1 or max_transfers < 1:
            raise ValueError("part_size, parallel_parts and max_transfers must be positive")
        self.token = token
        self.url = (url or os.environ.get(URL_ENV) or DEFAULT_URL).rstrip("/")
        chosen = project if project not in (None, "") else token_project
        self.project = str(
            chosen if chosen not in (None, "") else os.environ.get(PROJECT_ENV) or DEFAULT_PROJECT
        )
        self.multipart_threshold = multipart_threshold
        self.part_size = part_size
        self.parallel_parts = parallel_parts
        self._slots = threading.Semaphore(max_transfers)
        self._transfers: weakref.WeakSet[TransferHandler] = weakref.WeakSet()
        self._http = SpacesTransport(
            self.url,
            token,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retry=RetryPolicy(retries=retries, backoff=backoff),
            verify=verify,
            user_agent=USER_AGENT,
            http_transport=http_transport,
        )

    @property
    def anonymous(self) -> bool:
        return self.token is None

    def storage(self, name: str) -> Storage:
        """The storage space ``name`` of the project (no request is made until it is used)."""
        return Storage(self, name)

    # -- spaces ------------------------------------------------------------------------------
    def spaces(self) -> list[dict[str, Any]]:
        """The spaces this client may read (anonymous: the public ones), with ``access``
        (read/write), ``objects`` and ``bytes`` besides name, description, public, createdAt,
        expiresAt and readOnly."""
        answer = self._http.json("GET", self._project_path())
        spaces: list[dict[str, Any]] = answer["spaces"]
        return spaces

    def create_space(
        self,
        name: str,
        *,
        description: str = "",
        public: bool = False,
        expires_at: datetime | str | None = None,
    ) -> dict[str, Any]:
        """Create a space (the token needs ``canManageSpaces``); ``expires_at`` makes it read-only then."""
        body: dict[str, Any] = {"name": name, "description": description, "public": public}
        if expires_at is not None:
            body["expiresAt"] = expires_at.isoformat() if isinstance(expires_at, datetime) else expires_at
        created: dict[str, Any] = self._http.json("POST", self._project_path(), json=body)
        return created

    def delete_space(self, name: str, *, force: bool = False) -> None:
        """Delete a space; ``force=True`` deletes its objects with it (else it must be empty)."""
        params = {"force": "true"} if force else None
        self._http.request("DELETE", f"{self._project_path()}/{_quote(name)}", params=params)

    def _project_path(self) -> str:
        return f"/spaces/v1/{_quote(self.project)}"

    # -- transfers ---------------------------------------------------------------------------
    def _start(
        self, handler: TransferHandler, job: Callable[[TransferHandler], Any], callback: Callback | None
    ) -> TransferHandler:
        if callback is not None:
            handler.register_callback(callback)
        self._transfers.add(handler)
        handler.start(job, self._slots)
        return handler

    def transfers(self) -> list[TransferHandler]:
        """The transfers of this client that have not ended yet."""
        return [h for h in list(self._transfers) if not h.done]

    def close(self, wait: bool = True) -> None:
        """Close the connections; first wait for running transfers (``wait=False``: abort them)."""
        for handler in self.transfers():
            if not wait:
                handler.abort()
            handler._done.wait()
        self._http.close()

    def __enter__(self) -> DataClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close(wait=exc_type is None)  # leaving on an error (Ctrl-C...): abort the transfers

    def __repr__(self) -> str:
        who = "anonymous" if self.token is None else "token"
        return f"DataClient({self.url!r}, project={self.project!r}, {who})"


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
