"""The entrepot Python SDK: ``Client(url, token)`` with ``.tokens``, ``.jobs``, ``.files``, ``.buckets``, ``.tables``,
``.sql``, ``.exports``, ``.export_templates``, ``.s3_keys`` and ``.carto`` (``entrepot.client.carto``);
``DataClient(token)`` for object spaces (``entrepot.client.data``).

The SDK runs on the user's machine, not in the server, so it is the one place outside
``entrepot.config`` that reads the environment: ``ENTREPOT_URL`` and ``ENTREPOT_TOKEN`` are the
defaults of ``Client(url=None, token=None)``.
"""

from __future__ import annotations

import os
import ssl
from types import TracebackType

import httpx

from entrepot.client._http import URL_ENV, USER_AGENT, RetryPolicy, Transport
from entrepot.client.buckets import Buckets
from entrepot.client.carto import Carto
from entrepot.client.data import (
    DataClient,
    FolderListing,
    ObjectItem,
    Storage,
    TransferAborted,
    TransferError,
    TransferHandler,
    TransferProgress,
    TransferStatus,
)
from entrepot.client.errors import (
    APIError,
    Conflict,
    ConnectionFailed,
    ExportCancelled,
    ExportFailed,
    ImportFailed,
    InvalidRequest,
    InvalidToken,
    JobCancelled,
    JobFailed,
    JobTimeout,
    NotFound,
    PermissionDenied,
    RateLimited,
    ServerError,
)
from entrepot.client.exports import Exports, ExportTemplates
from entrepot.client.files import Files
from entrepot.client.jobs import Jobs
from entrepot.client.s3keys import S3Keys
from entrepot.client.sql import SQL, Batch, QueryResult
from entrepot.client.tables import Tables
from entrepot.client.tokens import Tokens

__all__ = [
    "SQL",
    "APIError",
    "Batch",
    "Client",
    "Conflict",
    "ConnectionFailed",
    "DataClient",
    "ExportCancelled",
    "ExportFailed",
    "ExportTemplates",
    "Exports",
    "FolderListing",
    "ImportFailed",
    "InvalidRequest",
    "InvalidToken",
    "JobCancelled",
    "JobFailed",
    "JobTimeout",
    "NotFound",
    "ObjectItem",
    "PermissionDenied",
    "QueryResult",
    "RateLimited",
    "RetryPolicy",
    "ServerError",
    "Storage",
    "TransferAborted",
    "TransferError",
    "TransferHandler",
    "TransferProgress",
    "TransferStatus",
]

TOKEN_ENV = "ENTREPOT_TOKEN"


class Client:
    """A connection to one entrepot server with one token.

    ``timeout`` is the read/write timeout in seconds (or an ``httpx.Timeout``), ``connect_timeout``
    the time to open a connection; ``retries`` and ``backoff`` (first delay, seconds) set the retry
    policy described in ``docs/sdk.md``; ``verify`` is True, False, a CA bundle path or an SSL context.
    """

    def __init__(
        self,
        url: str | None = None,
        token: str | None = None,
        *,
        timeout: float | httpx.Timeout = 60.0,
        connect_timeout: float = 10.0,
        retries: int = 3,
        backoff: float = 0.5,
        verify: bool | str | ssl.SSLContext = True,
        http_transport: httpx.BaseTransport | None = None,
    ):
        url = url or os.environ.get(URL_ENV) or None
        token = token or os.environ.get(TOKEN_ENV) or None
        if not url:
            raise ValueError(f"no server URL: pass url=... or set {URL_ENV} (e.g. http://127.0.0.1:8000)")
        if not token:
            raise ValueError(f"no token: pass token=... or set {TOKEN_ENV}")
        if retries < 0:
            raise ValueError("retries must not be negative")
        url = url.rstrip("/")
        if url.endswith("/v2/storage"):  # tolerate the Keboola API root as the base URL
            url = url[: -len("/v2/storage")]
        self.url = url
        self._http = Transport(
            url,
            token,
            timeout=timeout,
            connect_timeout=connect_timeout,
            retry=RetryPolicy(retries=retries, backoff=backoff),
            verify=verify,
            user_agent=USER_AGENT,
            http_transport=http_transport,
        )
        self.tokens = Tokens(self._http)
        self.jobs = Jobs(self._http)
        self.files = Files(self._http)
        self.buckets = Buckets(self._http)
        self.tables = Tables(self._http, self.jobs, self.files)
        self.sql = SQL(self._http)
        self.exports = Exports(self._http)
        self.export_templates = ExportTemplates(self._http)
        self.s3_keys = S3Keys(self._http)
        self.carto = Carto(self._http)

    def close(self) -> None:
        """Close the connection pool."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.url!r})"
