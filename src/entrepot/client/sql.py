"""The SQL API (CARTO SQL API v2 face, ``/api/v2/sql``): queries, COPY FROM/TO and batch jobs.

``client.sql.query(q)`` answers a ``QueryResult`` (the JSON format) or, with ``dest``, streams
the result in any format to a path or binary file object. ``copy_from`` streams a body (gzip
by default) into ``COPY … FROM STDIN``, ``copy_to`` streams ``COPY … TO STDOUT`` out, and
``client.sql.batch`` runs queries as asynchronous jobs.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import zlib
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, BinaryIO, overload
from urllib.parse import quote, urlencode

from entrepot.client._http import _NOT_SENT, Transport, _retry_after
from entrepot.client.errors import APIError, ConnectionFailed, JobCancelled, JobFailed, JobTimeout

SQL_PATH = "/api/v2/sql"
JOB_PATH = f"{SQL_PATH}/job"
COPY_FROM_PATH = f"{SQL_PATH}/copyfrom"
COPY_TO_PATH = f"{SQL_PATH}/copyto"

FORMATS = ("json", "csv", "geojson", "parquet", "xlsx")
CHUNK_SIZE = 1024 * 1024
# a COPY TO query longer than this goes in a form body (POST) rather than the URL (GET)
MAX_URL_QUERY = 4096

# batch job statuses
PENDING, RUNNING, DONE, FAILED, CANCELLED = "pending", "running", "done", "failed", "cancelled"
FINAL_STATUSES = frozenset({DONE, FAILED, CANCELLED})

JobDict = dict[str, Any]
Dest = str | os.PathLike[str] | IO[bytes]
CopySource = str | os.PathLike[str] | bytes | bytearray | memoryview | IO[bytes] | Iterable[bytes]
ProgressCallback = Callable[[int, "int | None"], None]
BatchQuery = str | list[str] | Mapping[str, Any]


@dataclass
class QueryResult:
    """A JSON result: ``rows`` (dicts), ``fields`` (name -> ``{"type", "pgtype", ...}``), counts and time."""

    rows: list[dict[str, Any]]
    fields: dict[str, dict[str, Any]]
    total_rows: int
    time: float
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def columns(self) -> list[str]:
        """Column names in result order (from ``fields``, else from the first row)."""
        if self.fields:
            return list(self.fields)
        return list(self.rows[0]) if self.rows else []

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> QueryResult:
        rows = list(body.get("rows") or [])
        return cls(
            rows=rows,
            fields=dict(body.get("fields") or {}),
            total_rows=int(body.get("total_rows", len(rows)) or 0),
            time=float(body.get("time") or 0.0),
            raw=dict(body),
        )


class SQL:
    """The SQL API of the token's project: ``query``, ``copy_from``, ``copy_to`` and ``batch``."""

    def __init__(self, http: Transport):
        self._http = http
        self.batch = Batch(http)

    @overload
    def query(
        self,
        q: str,
        *,
        format: str = ...,
        dest: None = None,
        skipfields: str | Iterable[str] | None = ...,
        dp: int | None = ...,
        **params: Any,
    ) -> QueryResult: ...

    @overload
    def query(
        self,
        q: str,
        *,
        format: str = ...,
        dest: Dest,
        skipfields: str | Iterable[str] | None = ...,
        dp: int | None = ...,
        **params: Any,
    ) -> int: ...

    def query(
        self,
        q: str,
        *,
        format: str = "json",
        dest: Dest | None = None,
        skipfields: str | Iterable[str] | None = None,
        dp: int | None = None,
        **params: Any,
    ) -> QueryResult | int:
        """Run ``q`` (one or more statements; the last one's result is answered).

        Without ``dest`` the format must be ``json`` and the answer is a ``QueryResult``. With
        ``dest`` (a path or a binary file object) the response body, in any of ``json``, ``csv``,
        ``geojson``, ``parquet`` or ``xlsx``, is streamed there and the number of bytes written is
        answered. ``skipfields`` drops columns, ``dp`` sets the decimals of GeoJSON coordinates;
        other keyword arguments (``page``, ``rows_per_page``, ``filename``) go to the server as
        they are. The query travels in a form body (POST), so it may be long. A query is retried
        only when the server cannot have run it (no connection, 503, 429 with ``Retry-After``);
        a statement timeout (429 without ``Retry-After``) raises ``RateLimited`` at once.
        """
        fmt = format.lower()
        if fmt not in FORMATS:
            raise ValueError(f"format must be one of {', '.join(FORMATS)}, not {format!r}")
        form = _form(q, fmt, skipfields, dp, params)
        if dest is None:
            if fmt != "json":
                raise ValueError(f"format={fmt!r} needs dest=... (a path or a binary file object)")
            with self._open_stream("POST", SQL_PATH, form) as chunks:
                body = b"".join(chunks)
            return QueryResult.from_json(_json(body))
        with self._open_stream("POST", SQL_PATH, form) as chunks:
            return _write(chunks, dest)

    def copy_from(
        self,
        query: str,
        source: CopySource,
        *,
        compress: bool = True,
        chunk_size: int = CHUNK_SIZE,
        on_progress: ProgressCallback | None = None,
    ) -> dict[str, Any]:
        """Stream ``source`` into ``COPY table [(cols)] FROM STDIN [WITH (…)]`` and answer
        ``{"time": seconds, "total_rows": n}``.

        ``source`` is a path, bytes, a binary file object or an iterable of byte chunks, in
        the format the COPY statement names (PostgreSQL text by default, or CSV). It is sent
        chunked, gzip-compressed on the fly unless ``compress=False`` (an already gzipped source
        is sent as it is with ``Content-Encoding: gzip`` when its name ends in ``.gz``).
        ``on_progress(bytes_read, total)`` follows the source (total is None when unknown).
        Not retried: a streamed body cannot be replayed.
        """
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        with _open_copy_source(source, chunk_size) as (chunks, total, gzipped):
            body = _progress(chunks, total, on_progress)
            headers = {"Content-Type": "application/octet-stream"}
            if gzipped:
                headers["Content-Encoding"] = "gzip"
            elif compress:
                body = _gzip(body)
                headers["Content-Encoding"] = "gzip"
            url = f"{COPY_FROM_PATH}?{urlencode({'q': query}, quote_via=quote)}"
            with self._http.stream("POST", url, content=body, headers=headers) as response:
                response.read()
                result: dict[str, Any] = response.json()
        return result

    def privacy(self, table: str) -> str:
        """The privacy of ``table`` (``private``, ``public`` or ``link``); ``"in.c-main.t"`` names a bucket's table."""
        body = self._http.json("GET", f"{SQL_PATH}/tables/{quote(table, safe='')}/privacy")
        return str(body["privacy"])

    def set_privacy(self, table: str, privacy: str) -> None:
        """Make ``table`` ``private``, ``public`` or ``link``: anonymous SQL may read public and link tables."""
        self._http.json(
            "PUT", f"{SQL_PATH}/tables/{quote(table, safe='')}/privacy", json={"privacy": privacy}
        )

    def copy_to(self, query: str, dest: Dest, *, on_progress: ProgressCallback | None = None) -> int:
        """Stream the output of ``COPY (…) TO STDOUT [WITH (…)]`` to a path or binary file object.

        Answers the number of bytes written. ``on_progress(bytes_received, None)`` is called
        after every chunk. A path is written to ``<path>.part`` and renamed when complete.
        """
        with self.copy_to_stream(query) as chunks:
            return _write(_progress(chunks, None, on_progress), dest)

    @contextlib.contextmanager
    def copy_to_stream(self, query: str, *, chunk_size: int = CHUNK_SIZE) -> Iterator[Iterator[bytes]]:
        """A context manager that yields the bytes of ``COPY (…) TO STDOUT`` as an iterator of chunks."""
        form = {"q": query}
        if len(query) <= MAX_URL_QUERY:
            with self._open_stream("GET", COPY_TO_PATH, form, chunk_size=chunk_size) as chunks:
                yield chunks
        else:
            with self._open_stream("POST", COPY_TO_PATH, form, chunk_size=chunk_size) as chunks:
                yield chunks

    @contextlib.contextmanager
    def _open_stream(
        self, method: str, path: str, form: Mapping[str, Any], *, chunk_size: int = CHUNK_SIZE
    ) -> Iterator[Iterator[bytes]]:
        """Open a streamed answer; retry only where the server cannot have run the query."""
        headers = {"Accept": "*/*"}
        if method == "GET":
            url, content = f"{path}?{urlencode(form, doseq=True, quote_via=quote)}", None
        else:
            url, content = path, urlencode(form, doseq=True).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        policy = self._http.retry
        attempt = 0
        while True:
            stack = contextlib.ExitStack()
            try:
                response = stack.enter_context(
                    self._http.stream(method, url, content=content, headers=headers)
                )
            except APIError as exc:
                stack.close()
                wait = _retry_wait(exc, attempt, policy.delay(attempt), policy.max_retry_after)
                if wait is None or attempt >= policy.retries:
                    raise
                time.sleep(wait)
                attempt += 1
                continue
            with stack:
                yield response.iter_bytes(chunk_size)
            return


class Batch:
    """SQL batch jobs (``/api/v2/sql/job``): queries that run asynchronously on the server.

    Job objects are CARTO's: ``job_id``, ``user``, ``status`` (pending, running, done, failed,
    cancelled), ``query``, ``created_at``, ``updated_at`` and, on failure, ``failed_reason``.
    Batch jobs need the project's master token.
    """

    def __init__(self, http: Transport):
        self._http = http

    def create(self, query: BatchQuery) -> JobDict:
        """Queue a job: one query, a list of queries run in order, or a CARTO fallback job
        (``{"query": [{"query", "onsuccess", "onerror"}, …], "onsuccess", "onerror"}``)."""
        job: JobDict = self._http.json("POST", JOB_PATH, json={"query": _batch_query(query)})
        return job

    def get(self, job_id: str) -> JobDict:
        """The current state of a job; an unknown id raises ``InvalidRequest``."""
        job: JobDict = self._http.json("GET", f"{JOB_PATH}/{quote(str(job_id), safe='')}")
        return job

    def update(self, job_id: str, query: BatchQuery) -> JobDict:
        """Replace the query of a job that is still pending (else ``InvalidRequest``)."""
        path = f"{JOB_PATH}/{quote(str(job_id), safe='')}"
        job: JobDict = self._http.json("PUT", path, json={"query": _batch_query(query)})
        return job

    def cancel(self, job_id: str) -> JobDict:
        """Cancel a pending or running job; a finished one raises ``InvalidRequest``."""
        job: JobDict = self._http.json("DELETE", f"{JOB_PATH}/{quote(str(job_id), safe='')}")
        return job

    def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        poll: float = 0.5,
        on_status: Callable[[JobDict], None] | None = None,
    ) -> JobDict:
        """Poll until the job finishes; answer it when ``done``.

        ``on_status(job)`` is called whenever the status changes (the final one included).
        Raises ``JobFailed`` (message from ``failed_reason``) when it fails, ``JobCancelled``
        when it was cancelled, and ``JobTimeout`` after ``timeout`` seconds (the job goes on).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = min(0.05, poll)
        seen: Any = None
        while True:
            job = self.get(job_id)
            status = job.get("status")
            if status != seen:
                seen = status
                if on_status is not None:
                    on_status(job)
            if status == DONE:
                return job
            if status in (FAILED, CANCELLED):
                exc = JobCancelled(job) if status == CANCELLED else JobFailed(job)
                exc.code = "sql.jobCancelled" if status == CANCELLED else "sql.jobFailed"
                raise exc
            pause = delay
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise JobTimeout(job, timeout or 0.0)
                pause = min(pause, remaining)
            time.sleep(pause)
            delay = min(max(poll, 0.01), delay * 2)


# -- helpers ---------------------------------------------------------------------------------
def _retry_wait(exc: APIError, attempt: int, backoff: float, max_wait: float) -> float | None:
    """Seconds to wait before retrying a SQL request that failed with ``exc``; None: do not retry.

    Only failures where the query cannot have run: no connection opened, 503, and 429 with a
    ``Retry-After`` (a rate limit; a statement timeout is a 429 without one).
    """
    if isinstance(exc, ConnectionFailed):
        return backoff if isinstance(exc.__cause__, _NOT_SENT) else None
    if exc.response is None or exc.status not in (429, 503):
        return None
    after = _retry_after(exc.response)
    if after is None:
        return backoff if exc.status == 503 else None
    return after if after <= max_wait else None


def _json(body: bytes) -> dict[str, Any]:
    if not body:
        return {}
    try:
        value = json.loads(body)
    except ValueError as exc:
        raise APIError("the SQL API answered a body that is not JSON") from exc
    return value if isinstance(value, dict) else {}


def _form(
    q: str, fmt: str, skipfields: str | Iterable[str] | None, dp: int | None, params: Mapping[str, Any]
) -> dict[str, Any]:
    form: dict[str, Any] = {"q": q}
    if fmt != "json":
        form["format"] = fmt
    if skipfields is not None:
        form["skipfields"] = skipfields if isinstance(skipfields, str) else ",".join(skipfields)
    if dp is not None:
        form["dp"] = str(dp)
    for key, value in params.items():
        if value is not None:
            form[key] = value if isinstance(value, str) else str(value)
    return form


def _batch_query(query: BatchQuery) -> Any:
    if isinstance(query, str):
        return query
    if isinstance(query, Mapping):
        return dict(query)
    queries = list(query)
    if not queries:
        raise ValueError("a batch job needs at least one query")
    return queries


def _write(chunks: Iterable[bytes], dest: Dest) -> int:
    """Write chunks to a binary file object, or atomically (``.part`` then rename) to a path."""
    if hasattr(dest, "write"):
        return _write_to(chunks, dest)  # type: ignore[arg-type]
    path = Path(dest)
    part = path.with_name(path.name + ".part")
    try:
        with open(part, "wb") as out:
            written = _write_to(chunks, out)
        os.replace(part, path)
    except BaseException:
        part.unlink(missing_ok=True)
        raise
    return written


def _write_to(chunks: Iterable[bytes], out: IO[bytes]) -> int:
    written = 0
    for chunk in chunks:
        out.write(chunk)
        written += len(chunk)
    return written


@contextlib.contextmanager
def _open_copy_source(
    source: CopySource, chunk_size: int
) -> Iterator[tuple[Iterator[bytes], int | None, bool]]:
    """(chunks, size or None, already gzipped) of a COPY FROM source."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        data = bytes(source)
        yield iter([data] if data else []), len(data), False
        return
    if isinstance(source, (str, os.PathLike)):
        path = Path(source)
        with open(path, "rb") as f:
            yield _read(f, chunk_size), os.fstat(f.fileno()).st_size, path.name.endswith(".gz")
        return
    if hasattr(source, "read"):
        name = getattr(source, "name", None)
        gzipped = isinstance(name, str) and name.endswith(".gz")
        yield _read(source, chunk_size), _remaining(source), gzipped  # type: ignore[arg-type]
        return
    yield (bytes(chunk) for chunk in source if chunk), None, False


def _read(stream: BinaryIO, chunk_size: int) -> Iterator[bytes]:
    while chunk := stream.read(chunk_size):
        yield chunk


def _remaining(stream: BinaryIO) -> int | None:
    try:
        pos = stream.tell()
        end = stream.seek(0, os.SEEK_END)
        stream.seek(pos)
        return end - pos
    except (AttributeError, OSError, ValueError):
        return None


def _progress(
    chunks: Iterable[bytes], total: int | None, on_progress: ProgressCallback | None
) -> Iterator[bytes]:
    done = 0
    for chunk in chunks:
        yield chunk
        done += len(chunk)
        if on_progress is not None:
            on_progress(done, total)


def _gzip(chunks: Iterable[bytes], level: int = 6) -> Iterator[bytes]:
    """Gzip-compress a stream of chunks on the fly (a single gzip member)."""
    compressor = zlib.compressobj(level, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    for chunk in chunks:
        out = compressor.compress(chunk)
        if out:
            yield out
    yield compressor.flush()
