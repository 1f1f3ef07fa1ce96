"""HTTP transport of the SDK: base URL, token header, timeouts, retries, typed errors.

Retry policy (``RetryPolicy``), up to ``retries`` extra attempts with exponential backoff and jitter:

* idempotent methods (GET, HEAD, OPTIONS, PUT, DELETE) are retried on any transport error
  (connection refused or reset, timeouts) and on 429, 502, 503 and 504;
* POST is retried only where the server cannot have acted: when the connection could not be
  opened (connect error, connect or pool timeout) and on 429 and 503 (rejected before handling).
  A read timeout or a 502/504 after a POST is not retried: the request may have taken effect.

A ``Retry-After`` header (seconds or an HTTP date) replaces the computed backoff; when it asks
for more than ``max_retry_after`` seconds the SDK gives up at once and raises the error.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import os
import random
import ssl
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from entrepot._version import __version__
from entrepot.client.errors import APIError, ConnectionFailed, error_from_response

log = logging.getLogger("entrepot.client")

TOKEN_HEADER = "X-StorageApi-Token"
IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "PUT", "DELETE"})
RETRY_STATUSES = frozenset({429, 502, 503, 504})
# statuses that mean "not processed": safe to retry even for POST
RETRY_STATUSES_UNSAFE_METHODS = frozenset({429, 503})
# transport errors raised before the request could reach the server
_NOT_SENT = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently to retry; ``backoff`` is the first delay in seconds."""

    retries: int = 3
    backoff: float = 0.5
    backoff_max: float = 30.0
    max_retry_after: float = 120.0

    def delay(self, attempt: int) -> float:
        """Backoff before retry number ``attempt`` (0-based): exponential, capped, half of it jittered."""
        ceiling = min(self.backoff_max, self.backoff * 2.0**attempt)
        return ceiling / 2 + random.uniform(0, ceiling / 2)


def _retry_after(response: httpx.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if value is None:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - time.time())


URL_ENV = "ENTREPOT_URL"
USER_AGENT = f"entrepot-sdk/{__version__}"


def _ssl_verify(verify: bool | str | ssl.SSLContext) -> bool | ssl.SSLContext:
    if isinstance(verify, str):  # a CA bundle file (httpx deprecates passing the path itself)
        return ssl.create_default_context(cafile=verify)
    return verify


class Transport:
    """An ``httpx.Client`` bound to one entrepot server and token, with retries and typed errors."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        timeout: float | httpx.Timeout = 60.0,
        connect_timeout: float = 10.0,
        retry: RetryPolicy | None = None,
        verify: bool | str | ssl.SSLContext = True,
        user_agent: str,
        http_transport: httpx.BaseTransport | None = None,
    ):
        self.url = url.rstrip("/")
        self.retry = retry or RetryPolicy()
        if not isinstance(timeout, httpx.Timeout):
            timeout = httpx.Timeout(timeout, connect=connect_timeout)
        self._client = httpx.Client(
            base_url=self.url,
            headers={TOKEN_HEADER: token, "User-Agent": user_agent, "Accept": "application/json"},
            timeout=timeout,
            verify=_ssl_verify(verify),
            transport=http_transport,
        )

    def close(self) -> None:
        self._client.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> httpx.Response:
        """Send a request with the retry policy; return a 2xx/3xx response or raise a typed ``APIError``."""
        method = method.upper()
        idempotent = method in IDEMPOTENT_METHODS
        retryable_statuses = RETRY_STATUSES if idempotent else RETRY_STATUSES_UNSAFE_METHODS
        attempt = 0
        while True:
            try:
                response = self._client.request(
                    method, path, params=params, json=json, data=data, files=files
                )
            except httpx.TransportError as exc:
                fixable = not isinstance(exc, httpx.UnsupportedProtocol)
                safe = fixable and (idempotent or isinstance(exc, _NOT_SENT))
                if safe and attempt < self.retry.retries:
                    wait = self.retry.delay(attempt)
                    log.debug("%s %s: %s; retry %d in %.2f s", method, path, exc, attempt + 1, wait)
                    time.sleep(wait)
                    attempt += 1
                    continue
                tries = f" after {attempt + 1} attempts" if attempt else ""
                detail = f"{type(exc).__name__}: {str(exc) or 'no details'}"
                raise ConnectionFailed(f"{method} {self.url}{path} failed{tries}: {detail}") from exc
            if response.status_code < 400:
                return response
            if response.status_code in retryable_statuses and attempt < self.retry.retries:
                retry_after = _retry_after(response)
                wait = self.retry.delay(attempt) if retry_after is None else retry_after
                if wait <= self.retry.max_retry_after:
                    log.debug(
                        "%s %s: HTTP %d; retry %d in %.2f s",
                        method,
                        path,
                        response.status_code,
                        attempt + 1,
                        wait,
                    )
                    response.close()
                    time.sleep(wait)
                    attempt += 1
                    continue
            raise error_from_response(response)

    def json(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
    ) -> Any:
        """Like ``request`` but return the decoded JSON body (None for an empty body).

        ``files`` sends a multipart body; a file object in it is read from its start again on
        a retry (httpx seeks it back to 0).
        """
        response = self.request(method, path, params=params, json=json, data=data, files=files)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            raise APIError(
                f"{method} {path}: HTTP {response.status_code} came with a body that is not JSON",
                status=response.status_code,
                response=response,
            ) from exc

    @contextlib.contextmanager
    def stream(
        self, method: str, url: str, *, content: Any = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        """Send one request and yield the open response, for streamed uploads and downloads.

        No retries: a streamed body cannot be replayed. ``url`` may be absolute (a signed URL).
        Raises a typed ``APIError`` for 4xx/5xx and ``ConnectionFailed`` for transport errors.
        """
        try:
            with self._client.stream(method, url, content=content, headers=headers) as response:
                if response.status_code >= 400:
                    response.read()
                    raise error_from_response(response)
                yield response
        except httpx.TransportError as exc:
            detail = f"{type(exc).__name__}: {str(exc) or 'no details'}"
            raise ConnectionFailed(f"{method} {url.split('?')[0]} failed: {detail}") from exc


def local_target(dest: str | os.PathLike[str], name: str) -> Path:
    """Where a download to ``dest`` goes: ``dest`` itself, or ``name`` inside it when it is a
    directory (an existing one, or one written with a trailing separator, made if missing)."""
    target = Path(dest)
    if str(dest).endswith(("/", os.sep)):  # "downloads/": a directory, made if missing
        target.mkdir(parents=True, exist_ok=True)
    return target / name if target.is_dir() else target
