"""The Export API (``/data-tools/api/v1``): export jobs of tables to files, and export templates.

``client.exports.create("in.c-main.users", "parquet", filters={...})`` queues a job;
``wait`` follows it to the end, ``download`` streams the file to disk. A *datasource* is a
table the token may read, named by its uuid or by its table id (``in.c-main.users``).
``client.export_templates`` keeps reusable configurations (format, filters, options).
See ``docs/exports.md``.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote

from entrepot.client._http import Transport, local_target
from entrepot.client.errors import ExportCancelled, ExportFailed, JobTimeout, NotFound

API_PATH = "/data-tools/api/v1"
EXPORTS_PATH = f"{API_PATH}/exports/"
TEMPLATES_PATH = f"{API_PATH}/export-templates/"
DATASOURCES_PATH = f"{API_PATH}/datasources/"

FORMATS = ("csv", "json", "parquet", "excel")
PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED = (
    "pending",
    "processing",
    "completed",
    "failed",
    "cancelled",
)
STATUSES = (PENDING, PROCESSING, COMPLETED, FAILED, CANCELLED)
FINAL_STATUSES = frozenset({COMPLETED, FAILED, CANCELLED})
TEMPLATE_FIELDS = frozenset({"name", "description", "configuration", "template_type", "is_active"})
CHUNK_SIZE = 1 << 20
MAX_PAGE_SIZE = 100

JobDict = dict[str, Any]
TemplateDict = dict[str, Any]
JobCallback = Callable[[JobDict], None]
BytesCallback = Callable[[int, "int | None"], None]


def _data(body: Any) -> Any:
    """The ``data`` of a success envelope (the body itself when it is not one)."""
    if isinstance(body, dict) and "success" in body and "data" in body:
        return body["data"]
    return body


def _id(value: Any) -> str:
    return quote(str(value), safe="")


def _is_uuid(value: str) -> bool:
    try:
        uuid.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return False
    return True


def _params(**values: Any) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v is not None}


_FILENAME_STAR = re.compile(r"filename\*\s*=\s*([^']*)'[^']*'([^;]+)", re.IGNORECASE)
_FILENAME = re.compile(r'filename\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^;]+))', re.IGNORECASE)


def filename_from_disposition(header: str | None) -> str | None:
    """The file name of a ``Content-Disposition`` header (``filename*`` first), without any directory."""
    if not header:
        return None
    name: str | None = None
    star = _FILENAME_STAR.search(header)
    if star:
        charset = star.group(1).strip() or "utf-8"
        try:
            name = unquote(star.group(2).strip().strip('"'), encoding=charset, errors="strict")
        except (LookupError, UnicodeDecodeError):
            name = None
    if name is None:
        plain = _FILENAME.search(header)
        if plain:
            name = plain.group(1) if plain.group(1) is not None else plain.group(2).strip()
            name = re.sub(r"\\(.)", r"\1", name)
    if not name:
        return None
    name = name.replace("\\", "/").rsplit("/", 1)[-1].strip()
    return None if name in ("", ".", "..") else name


class Exports:
    """Export jobs of the caller (its owner name, or the token itself; a master token sees all)."""

    def __init__(self, http: Transport):
        self._http = http

    # -- datasources ---------------------------------------------------------------------
    def datasources(self, search: str | None = None) -> list[dict[str, Any]]:
        """Tables the token may export: ``id``, ``name``, ``table_id``, ``columns``, ``column_types``,
        ``row_count``, ``created_at``, ``last_change_at``. ``search`` matches the name or table id."""
        data = _data(self._http.json("GET", DATASOURCES_PATH, params=_params(search=search)))
        datasources: list[dict[str, Any]] = list((data or {}).get("datasources") or [])
        return datasources

    def datasource(self, datasource_id: str) -> dict[str, Any]:
        """One datasource, by uuid or by table id (``in.c-main.users``)."""
        ds_id = self._datasource_id(datasource_id)
        datasource: dict[str, Any] = _data(self._http.json("GET", f"{DATASOURCES_PATH}{_id(ds_id)}/"))
        return datasource

    def _datasource_id(self, datasource: str) -> str:
        """A datasource uuid as it is, a table id resolved to its datasource's uuid (else ``NotFound``)."""
        value = str(datasource).strip()
        if _is_uuid(value):
            return value
        for ds in self.datasources(search=value):
            if ds.get("table_id") == value:
                return str(ds["id"])
        raise NotFound(
            f"Datasource not found: no readable table {value!r}", code="exports.datasourceNotFound"
        )

    # -- jobs ----------------------------------------------------------------------------
    def create(
        self,
        datasource: str,
        format: str | None = None,
        *,
        filters: Mapping[str, Any] | None = None,
        options: Mapping[str, Any] | None = None,
        template: str | None = None,
    ) -> JobDict:
        """Queue an export of ``datasource`` (a uuid or a table id) and answer the new job.

        ``format`` is csv, json, parquet or excel: csv by default, or the template's format
        when ``template`` (a template uuid) is given. The template's filters and options are
        defaults that ``filters`` and ``options`` override key by key.
        """
        body: dict[str, Any] = {"datasource": self._datasource_id(datasource)}
        if format is not None:
            body["format"] = format.lower()
        elif template is None:
            body["format"] = "csv"
        if filters is not None:
            body["filters"] = dict(filters)
        if options is not None:
            body["options"] = dict(options)
        if template is not None:
            body["template"] = str(template)
        job: JobDict = _data(self._http.json("POST", EXPORTS_PATH, json=body))
        return job

    def get(self, job_id: str) -> JobDict:
        """The current state of a job (raises ``NotFound`` for an unknown or invisible one)."""
        job: JobDict = _data(self._http.json("GET", f"{EXPORTS_PATH}{_id(job_id)}/"))
        return job

    def list(
        self,
        *,
        page: int = 1,
        page_size: int = 20,
        status: str | None = None,
        format: str | None = None,
        datasource: str | None = None,
        search: str | None = None,
    ) -> dict[str, Any]:
        """One page of jobs, newest first: ``{"export_jobs": [...], "pagination": {...}}``.

        ``datasource`` is a uuid or a table id; ``search`` matches the datasource name or the
        error message. ``page_size`` is at most 100.
        """
        params = _params(
            page=page,
            page_size=page_size,
            status=status,
            format=format,
            datasource=self._datasource_id(datasource) if datasource is not None else None,
            search=search,
        )
        data: dict[str, Any] = _data(self._http.json("GET", EXPORTS_PATH, params=params))
        return data

    def iter(
        self,
        *,
        status: str | None = None,
        format: str | None = None,
        datasource: str | None = None,
        search: str | None = None,
        page_size: int = MAX_PAGE_SIZE,
    ) -> Iterator[JobDict]:
        """Every job matching the filters, newest first, fetching pages as it goes."""
        if datasource is not None:
            datasource = self._datasource_id(datasource)
        page = 1
        while True:
            data = self.list(
                page=page,
                page_size=page_size,
                status=status,
                format=format,
                datasource=datasource,
                search=search,
            )
            jobs = data.get("export_jobs") or []
            yield from jobs
            if not jobs or not (data.get("pagination") or {}).get("has_next"):
                return
            page += 1

    def cancel(self, job_id: str) -> JobDict:
        """Cancel a pending or processing job: ``{"id", "status": "cancelled", "completed_at"}``.

        Raises ``Conflict`` when the job has already finished.
        """
        job: JobDict = _data(self._http.json("POST", f"{EXPORTS_PATH}{_id(job_id)}/cancel/"))
        return job

    def retry(self, job_id: str) -> JobDict:
        """Queue a failed or cancelled job again (status ``pending``); ``Conflict`` otherwise."""
        job: JobDict = _data(self._http.json("POST", f"{EXPORTS_PATH}{_id(job_id)}/retry/"))
        return job

    def delete(self, job_id: str) -> None:
        """Delete a job and its file; ``Conflict`` while it is processing (cancel it first)."""
        self._http.request("DELETE", f"{EXPORTS_PATH}{_id(job_id)}/")

    def wait(
        self,
        job_id: str,
        *,
        timeout: float | None = None,
        poll: float = 0.2,
        on_progress: JobCallback | None = None,
    ) -> JobDict:
        """Poll until the job finishes; answer it when ``completed``.

        ``on_progress(job)`` is called whenever the status or the progress changes (the final
        state included). Raises ``ExportFailed`` (the message is the job's ``error_message``)
        when it fails, ``ExportCancelled`` when it was cancelled, and ``JobTimeout`` after
        ``timeout`` seconds (the job goes on).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = min(0.05, poll)
        seen: tuple[Any, Any] | None = None
        while True:
            job = self.get(job_id)
            state = (job.get("status"), job.get("progress"))
            if state != seen:
                seen = state
                if on_progress is not None:
                    on_progress(job)
            status = job.get("status")
            if status == COMPLETED:
                return job
            if status == FAILED:
                raise ExportFailed(job)
            if status == CANCELLED:
                raise ExportCancelled(job)
            pause = delay
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise JobTimeout(job, timeout or 0.0)
                pause = min(pause, remaining)
            time.sleep(pause)
            delay = min(max(poll, 0.01), delay * 2)

    # -- files ---------------------------------------------------------------------------
    def download(
        self,
        job_id: str,
        path: str | os.PathLike[str] | None = None,
        *,
        chunk_size: int = CHUNK_SIZE,
        on_progress: BytesCallback | None = None,
    ) -> Path:
        """Stream a completed job's file to disk and answer where it went.

        ``path`` None writes the server's file name (``Content-Disposition``) in the current
        directory; a directory (or a path ending in ``/``, created if missing) writes that name
        inside it; anything else is the file itself.
        The file is written to ``<name>.part`` and renamed when complete, ``chunk_size`` bytes
        at a time. ``on_progress(bytes_written, total or None)`` follows the transfer. Raises
        ``Conflict`` when the job is not completed and ``APIError`` with status 410 when the
        file has expired.
        """
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        with self._http.stream(
            "GET", f"{EXPORTS_PATH}{_id(job_id)}/download/", headers={"Accept": "*/*"}
        ) as r:
            name = filename_from_disposition(r.headers.get("Content-Disposition")) or f"export-{job_id}"
            target = Path.cwd() / name if path is None else local_target(path, name)
            total = (
                int(r.headers["Content-Length"]) if r.headers.get("Content-Length", "").isdigit() else None
            )
            part = target.with_name(target.name + ".part")
            try:
                with open(part, "wb") as out:
                    done = 0
                    for chunk in r.iter_bytes(chunk_size):
                        out.write(chunk)
                        done += len(chunk)
                        if on_progress is not None:
                            on_progress(done, total)
                os.replace(part, target)
            except BaseException:
                part.unlink(missing_ok=True)
                raise
        return target

    def iter_bytes(self, job_id: str, *, chunk_size: int = CHUNK_SIZE) -> Iterator[bytes]:
        """The file of a completed job as chunks of bytes (the connection closes when the iterator ends)."""
        with self._http.stream(
            "GET", f"{EXPORTS_PATH}{_id(job_id)}/download/", headers={"Accept": "*/*"}
        ) as r:
            yield from r.iter_bytes(chunk_size)

    def read_bytes(self, job_id: str) -> bytes:
        """The whole file of a completed job in memory (small files; use ``download`` otherwise)."""
        return b"".join(self.iter_bytes(job_id))


class ExportTemplates:
    """Export templates: the caller's own (``user``), ``shared`` ones of the project, and built-in ``system`` ones."""

    def __init__(self, http: Transport):
        self._http = http

    def create(
        self,
        name: str,
        configuration: Mapping[str, Any],
        *,
        description: str = "",
        template_type: str = "user",
        is_active: bool = True,
    ) -> TemplateDict:
        """Create a template; ``configuration`` is ``{"format", "filters"?, "options"?}``."""
        body = {
            "name": name,
            "description": description,
            "template_type": template_type,
            "is_active": is_active,
            "configuration": dict(configuration),
        }
        template: TemplateDict = _data(self._http.json("POST", TEMPLATES_PATH, json=body))
        return template

    def list(
        self, *, type: str | None = None, format: str | None = None, search: str | None = None
    ) -> list[TemplateDict]:
        """Templates the caller can use: its own, the project's shared ones and the system ones."""
        data = _data(
            self._http.json("GET", TEMPLATES_PATH, params=_params(type=type, format=format, search=search))
        )
        templates: list[TemplateDict] = list((data or {}).get("templates") or [])
        return templates

    def get(self, template_id: str) -> TemplateDict:
        """One template (``NotFound`` for an unknown one or someone else's user template)."""
        template: TemplateDict = _data(self._http.json("GET", f"{TEMPLATES_PATH}{_id(template_id)}/"))
        return template

    def update(self, template_id: str, **fields: Any) -> TemplateDict:
        """Change only the given fields: ``name``, ``description``, ``configuration``,
        ``template_type``, ``is_active``. Raises ``PermissionDenied`` for a system template or
        someone else's shared one."""
        unknown = set(fields) - TEMPLATE_FIELDS
        if unknown:
            raise TypeError(
                f"unknown template field(s) {', '.join(sorted(unknown))}; "
                f"expected {', '.join(sorted(TEMPLATE_FIELDS))}"
            )
        if not fields:
            raise TypeError("update() needs at least one field to change")
        body = {k: dict(v) if k == "configuration" else v for k, v in fields.items()}
        template: TemplateDict = _data(
            self._http.json("PUT", f"{TEMPLATES_PATH}{_id(template_id)}/", json=body)
        )
        return template

    def delete(self, template_id: str) -> None:
        """Delete a template (the jobs made with it keep their configuration)."""
        self._http.request("DELETE", f"{TEMPLATES_PATH}{_id(template_id)}/")
