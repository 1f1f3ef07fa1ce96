"""The import job (``imports.run``): fetch the source, unpack it, create one table per layer.

Params (version 1): ``uuid``, ``source`` (``file`` with ``blob_key``/``filename``, ``url``
with ``url``, or ``none``), and the import options (``table_name``, ``privacy``,
``type_guessing``…). Steps, reported as progress (``service.UNPACKING`` etc., which the Import
API shows as CARTO's states):

1. unpacking: the upload is copied (or the URL downloaded through the URL guard) into the
   project's SQL sandbox's temp directory; a gzip file is inflated and a zip archive extracted,
   both bounded by ``import_max_inflated_bytes``;
2. importing: each layer's columns are read (``formats.select_of``) and its name chosen
   (``name``, ``name_1``… on collisions);
3. guessing: in one lake transaction, each table is created from its ``SELECT`` (``the_geom``
   derived there) and cartodbfied (``core.sql.table_model.cartodbfy``); the catalog rows follow,
   with the import's privacy. A failure anywhere leaves no table behind.

With ``create_vis`` (and always for a ``.carto`` file, ``carto_file.py``), a map showing the new
tables is created last (``core/visualizations.py``); its id is the result's ``visualization_id``.
"""

from __future__ import annotations

import os
import shutil
import threading
import uuid as uuidlib
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlsplit

import duckdb

from entrepot.core import errors as E
from entrepot.core import urlguard, visualizations
from entrepot.core.engine.statements import interrupt_on_cancel
from entrepot.core.engine.tables import TableRef, table_names, transaction
from entrepot.core.files.rows import safe_name
from entrepot.core.imports import archive, carto_file, formats
from entrepot.core.imports.service import GUESSING, IMPORTING, KIND, UNPACKING, ImportedTable
from entrepot.core.inflate import gunzip_file, starts_with_gzip_magic
from entrepot.core.jobs import JobContext, JobRegistry
from entrepot.core.sql.authorize import member_project
from entrepot.core.sql.catalog_sync import stored_table, sync_catalog
from entrepot.core.sql.namespace import DEFAULT_SCHEMA
from entrepot.core.sql.ownership import adopt
from entrepot.core.sql.table_model import Definition, create_cartodbfied
from entrepot.core.tables.extract import job_principal

if TYPE_CHECKING:
    from entrepot.core.services import Services

COPY_CHUNK = 1024 * 1024
# what a URL's Content-Type says its file is, when its path has no known extension
CONTENT_TYPES = {
    "text/csv": ".csv",
    "text/tab-separated-values": ".tsv",
    "text/plain": ".csv",
    "application/geo+json": ".geojson",
    "application/vnd.geo+json": ".geojson",
    "application/json": ".geojson",
    "application/geopackage+sqlite3": ".gpkg",
    "application/x-sqlite3": ".gpkg",
    "application/zip": ".zip",
    "application/x-zip-compressed": ".zip",
    "application/vnd.apache.parquet": ".parquet",
    "application/x-parquet": ".parquet",
    "application/vnd.google-earth.kml+xml": ".kml",
    "application/gpx+xml": ".gpx",
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": ".xlsx",
}


def run(ctx: JobContext[Services]) -> dict[str, Any]:
    """Job ``imports.run``."""
    services = ctx.services
    params = ctx.params
    try:
        principal = job_principal(ctx)
        project = member_project(services, principal, ctx.project_id)
        if not principal.may_create_in(DEFAULT_SCHEMA):
            raise E.PermissionDenied(
                "the key that started this import may no longer create tables",
                code="imports.permissionDenied",
            )
        box = services.sql.sandbox(project.name)
        work = box.temp / f"import-{uuidlib.uuid4().hex}"
        work.mkdir(parents=True)
        try:
            ctx.progress(UNPACKING)
            files = unpack(services.settings.import_max_inflated_bytes, _fetch(ctx, work), work)
            definition, files = carto_file.take_definition(files)
            ctx.check_cancelled()
            ctx.progress(IMPORTING)
            tables = _create_tables(ctx, box, files)
        finally:
            shutil.rmtree(work, ignore_errors=True)
        created = _finish(ctx, project, tables)
        map_id = _create_map(ctx, project.id, created, definition)
    finally:
        if params.get("blob_key"):
            services.blobs.delete(params["blob_key"])
    ctx.progress(100)
    return {
        "tables": [{"id": t.id, "name": t.name} for t in created],
        "table_name": created[0].name,
        "table_id": created[0].id,
        "visualization_id": map_id,
    }


def _create_map(
    ctx: JobContext[Services],
    project_id: int,
    created: list[ImportedTable],
    definition: carto_file.CartoDefinition | None,
) -> str | None:
    """The map of ``create_vis`` (or the one a ``.carto`` file describes) over the new tables."""
    if definition is not None and definition.name is not None:
        return visualizations.create_map(
            ctx.services,
            project_id,
            [t.id for t in created],
            name=definition.name,
            privacy=definition.privacy,
            attributes=definition.attributes,
        )
    if ctx.params.get("create_vis"):
        privacy = ctx.params.get("privacy") or "private"
        return visualizations.create_map(ctx.services, project_id, [t.id for t in created], privacy=privacy)
    return None


# -- 1. unpacking --------------------------------------------------------------------------------


def _fetch(ctx: JobContext[Services], work: Path) -> Path:
    """The source as a local file in ``work``."""
    services = ctx.services
    params = ctx.params
    source = params.get("source")
    if source == "file":
        dest = work / safe_name(params.get("filename") or "upload")
        local = services.blobs.path(params["blob_key"])
        if local is not None:  # the local store: a hard link, not a copy (blobs never change in place)
            try:
                os.link(local, dest)
                return dest
            except OSError:  # another filesystem: copy
                pass
        with services.blobs.open(params["blob_key"]) as src, dest.open("wb") as out:
            shutil.copyfileobj(src, out, COPY_CHUNK)
        return dest
    if source == "url":
        return fetch_url(services, str(params["url"]), work, cancelled=ctx.cancelled)[0]
    raise E.InvalidInput("the import has no file nor URL to import", code="imports.noSource")


def fetch_url(
    services: Services,
    url: str,
    work: Path,
    *,
    cancelled: threading.Event | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[Path, urlguard.DownloadResult]:
    """Download ``url`` through the URL guard into ``work``: the file (named for its format) and the result.

    ``headers`` are conditional headers (``If-None-Match``…); when the source answers 304 the
    result says ``not_modified`` and the file does not exist. Errors carry the import's codes.
    """
    settings = services.settings
    name = _url_name(url)
    try:
        result = urlguard.download(
            url,
            work / "download",
            allowed=settings.url_import_allowed_hosts,
            max_bytes=settings.url_import_max_bytes,
            timeout=settings.url_import_timeout,
            cancelled=cancelled,
            label="url",
            headers=headers,
        )
    except E.PayloadTooLarge as exc:
        raise E.PayloadTooLarge(exc.message, code="imports.tooLarge") from None
    except E.InvalidInput as exc:
        details = exc.details or {}
        status = details.get("status")
        code = "imports.downloadFailed"
        if status == 404:
            code = "imports.urlNotFound"
        elif status in (401, 403):
            code = "imports.urlForbidden"
        elif status is None and "url" in details:
            code = "imports.urlRefused"
        raise E.InvalidInput(exc.message, code=code, details=details) from None
    if formats.format_of(Path(name)) is None and not name.lower().endswith(
        (*formats.ARCHIVES, *formats.COMPRESSED)
    ):
        content_type = (result.content_type or "").split(";")[0].strip().lower()
        name = Path(name).stem + CONTENT_TYPES.get(content_type, Path(name).suffix)
    dest = work / name
    if not result.not_modified:
        result.path.rename(dest)
    return dest, result


def _url_name(url: str) -> str:
    path = unquote(urlsplit(url).path)
    try:
        return safe_name(path.rsplit("/", 1)[-1] or "download")
    except E.InvalidInput:
        return "download"


def unpack(limit: int, path: Path, work: Path) -> list[Path]:
    """The files to import: ``path`` itself, its inflated gzip content, or a zip archive's members.

    ``limit`` bounds what inflating or extracting may produce (``import_max_inflated_bytes``).
    """
    if path.stat().st_size == 0:
        raise E.InvalidInput(f"{path.name} is empty", code="imports.emptyFile")
    lower = path.name.lower()
    if lower.endswith(formats.COMPRESSED) or starts_with_gzip_magic(path):
        inner = work / "inflated" / (path.name[: -len(".gz")] if lower.endswith(".gz") else path.name)
        inner.parent.mkdir()
        gunzip_file(
            path,
            inner,
            max_bytes=limit,
            what=path.name,
            code="imports.badArchive",
            too_large=lambda n: E.PayloadTooLarge(
                f"{path.name} inflates to more than {n:,} bytes (setting import_max_inflated_bytes)",
                code="imports.inflatedTooLarge",
            ),
        )
        path, lower = inner, inner.name.lower()
        if path.stat().st_size == 0:
            raise E.InvalidInput(f"{path.name} is empty", code="imports.emptyFile")
    if lower.endswith(formats.ARCHIVES):
        files = archive.extract(path, work / "unzipped", max_bytes=limit)
        files = [f for f in files if f.stat().st_size > 0]
        if not files:
            raise E.InvalidInput(f"{path.name} holds no files", code="imports.emptyFile")
        return files
    if formats.format_of(path) is None:
        raise formats.unsupported(path.name)
    return [path]


# -- 2. and 3. importing and guessing ------------------------------------------------------------


def read_layers(
    cur: duckdb.DuckDBPyConnection, settings: Any, files: list[Path], params: dict[str, Any]
) -> list[tuple[formats.Layer, str]]:
    """Each layer of ``files`` with the ``SELECT`` that reads it (import options from ``params``)."""
    options = formats.ReadOptions(
        type_guessing=bool(params.get("type_guessing", True)),
        quoted_fields_guessing=bool(params.get("quoted_fields_guessing", True)),
        max_columns=settings.carto_import_max_columns,
    )
    layers = formats.layers_of(cur, files, params.get("table_name"), settings.carto_import_max_layers)
    return [(layer, formats.select_of(cur, layer, options)) for layer in layers]


def create_table(
    ctx: JobContext[Services],
    cur: duckdb.DuckDBPyConnection,
    layer: formats.Layer,
    select: str,
    ref: TableRef,
    *,
    replace: bool = False,
) -> Definition:
    """``CREATE [OR REPLACE] TABLE ref AS select``, cartodbfied in the same pass; run it inside a
    lake transaction."""
    try:
        return create_cartodbfied(cur, ref, select, replace=replace)
    except duckdb.InterruptException:
        ctx.check_cancelled()
        raise
    except duckdb.Error as exc:
        raise formats.load_error(layer, exc) from None


def _create_tables(ctx: JobContext[Services], box: Any, files: list[Path]) -> dict[TableRef, Definition]:
    settings = ctx.services.settings
    params = ctx.params
    definitions: dict[TableRef, Definition] = {}
    with box.cursor(write=True) as cur, interrupt_on_cancel(ctx, cur):
        read = read_layers(cur, settings, files, params)
        layers = [layer for layer, _ in read]
        selects = [select for _, select in read]
        taken = {n.lower() for n in table_names(cur, DEFAULT_SCHEMA)}
        refs = [TableRef(DEFAULT_SCHEMA, formats.unique_name(layer.name, taken)) for layer in layers]
        ctx.check_cancelled()
        ctx.progress(GUESSING)
        with transaction(cur, translate_errors=False):
            for layer, select, ref in zip(layers, selects, refs, strict=True):
                definitions[ref] = create_table(ctx, cur, layer, select, ref)
        principal = job_principal(ctx)
        project = member_project(ctx.services, principal, ctx.project_id)
        sync_catalog(ctx.services, project, cur, dict(definitions))
        adopt(ctx.services, principal, project, refs)  # a CARTO key owns what it imports
    return definitions


def _finish(
    ctx: JobContext[Services], project: Any, tables: dict[TableRef, Definition]
) -> list[ImportedTable]:
    """Give the new tables the import's privacy; their ids and names."""
    privacy = ctx.params.get("privacy") or "private"
    created = []
    with ctx.services.catalog.session() as s:
        for ref in tables:
            row = stored_table(s, project, ref)
            if row is None:
                continue
            row.privacy = privacy
            created.append(ImportedTable(row.uuid, row.name))
    if not created:
        raise E.InvalidInput("the file holds no data", code="imports.emptyFile")
    return created


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register(KIND, run)


__all__ = ["KIND", "register_jobs", "run"]
