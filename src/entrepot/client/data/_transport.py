"""The HTTP transport of ``DataClient``: the SDK's ``Transport`` with a Bearer token (or none),
plus retries of streamed bodies that the transfer jobs can replay from their source."""

from __future__ import annotations

import contextlib
import logging
import ssl
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import httpx

from entrepot.client._http import TOKEN_HEADER, RetryPolicy, Transport, _retry_after
from entrepot.client.errors import APIError, ConnectionFailed, InvalidToken, RateLimited, ServerError

log = logging.getLogger("entrepot.client")

# failures worth another attempt of a transfer request (idempotent: PUT of an object or a
# part, GET of a byte range)
RETRYABLE = (ConnectionFailed, ServerError, RateLimited)


class SpacesTransport(Transport):
    """``Transport`` that authenticates with ``Authorization: Bearer`` and may be anonymous.

    An anonymous client that is refused (401) gets a plain ``APIError``: ``InvalidToken`` is
    for a token the server rejected.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        *,
        timeout: float | httpx.Timeout,
        connect_timeout: float,
        retry: RetryPolicy,
        verify: bool | str | ssl.SSLContext,
        user_agent: str,
        http_transport: httpx.BaseTransport | None,
    ):
        super().__init__(
            url,
            token or "",
            timeout=timeout,
            connect_timeout=connect_timeout,
            retry=retry,
            verify=verify,
            user_agent=user_agent,
            http_transport=http_transport,
        )
        self.token = token
        self._client.headers.pop(TOKEN_HEADER, None)
        if token:
            self._client.headers["Authorization"] = f"Bearer {token}"

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
        try:
            return super().request(method, path, params=params, json=json, data=data, files=files)
        except InvalidToken as exc:
            raise self._refused(exc) from None

    @contextlib.contextmanager
    def stream(
        self, method: str, url: str, *, content: Any = None, headers: Mapping[str, str] | None = None
    ) -> Iterator[httpx.Response]:
        try:
            with super().stream(method, url, content=content, headers=headers) as response:
                yield response
        except InvalidToken as exc:
            raise self._refused(exc) from None

    def _refused(self, exc: InvalidToken) -> APIError:
        if self.token:
            return exc
        return APIError(
            f"{exc.message} (this DataClient is anonymous: create it with DataClient(token))",
            status=exc.status,
            code=exc.code,
            exception_id=exc.exception_id,
            response=exc.response,
        )

    def retry_wait(self, exc: APIError, attempt: int) -> float | None:
        """Seconds to wait before retry number ``attempt`` (0-based) after ``exc``; None: give up."""
        if attempt >= self.retry.retries or not isinstance(exc, RETRYABLE):
            return None
        if exc.status == 501:  # not implemented: another try will not help
            return None
        if exc.response is not None:
            wait = _retry_after(exc.response)
            if wait is not None:
                return wait if wait <= self.retry.max_retry_after else None
        return self.retry.delay(attempt)

    def send_body(
        self,
        method: str,
        path: str,
        body: Callable[[], Iterator[bytes]],
        headers: Mapping[str, str],
        *,
        sleep: Callable[[float], None],
        on_retry: Callable[[], None] = lambda: None,
    ) -> Any:
        """Send a body that ``body()`` can produce again, with retries; return the JSON answer.

        ``on_retry`` runs after a failed attempt (to take back the progress it counted),
        ``sleep`` waits the backoff (and may raise to stop).
        """
        attempt = 0
        while True:
            try:
                with self.stream(method, path, content=body(), headers=headers) as response:
                    response.read()
                    return response.json() if response.content else None
            except RETRYABLE as exc:
                on_retry()
                wait = self.retry_wait(exc, attempt)
                if wait is None:
                    raise
                log.debug("%s %s: %s; retry %d in %.2f s", method, path, exc, attempt + 1, wait)
                sleep(wait)
                attempt += 1
