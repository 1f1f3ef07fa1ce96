"""Keboola parameters of the table endpoints read into the core's typed inputs.

The core checks what they say (one data source, a valid dialect, column names …); here they
are only read, under Keboola's names.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import Request

from entrepot.core.errors import EntrepotError
from entrepot.core.tables.load import LoadOptions, LoadSource
from entrepot.faces.storage_v2.params import Params

T = TypeVar("T")

# Keboola's other data sources (workspaces, snapshots, other tables): refused by the core
_UNSUPPORTED_SOURCES = ("snapshotId", "dataWorkspaceId", "dataTableName", "dataObject", "sourceTableId")


def parse_after(lookup: Callable[[], object], parse: Callable[[], T]) -> T:
    """``parse()`` the request's parameters; when they are invalid, ``lookup()`` runs first.

    Keboola looks the table (bucket, job) up before it reads the parameters, so a missing one
    is answered 404 whatever else is wrong with the request; ``lookup`` raises that 404.
    """
    try:
        return parse()
    except EntrepotError:
        lookup()
        raise


def run_id(request: Request) -> str | None:
    """The caller's run id (``X-KBC-RunId``): the jobs and Files of the request carry it."""
    return request.headers.get("x-kbc-runid") or None


def load_source(params: Params) -> LoadSource:
    """The data source of a create or import: ``dataFileId``, ``dataString``, ``dataUrl`` or a CSV body.

    A raw body counts only when it is not a JSON or form body (whose fields are the parameters).
    """
    unsupported = tuple(name for name in _UNSUPPORTED_SOURCES if params.str(name))
    body: bytes | None = None
    if (
        not params.content_type.startswith(("application/json", "application/x-www-form-urlencoded"))
        and params.raw_body.strip()
    ):
        body = params.raw_body
    data_string = params.get("dataString")
    if isinstance(data_string, list):
        data_string = data_string[-1] if data_string else None
    inline_string = str(data_string).encode() if data_string not in (None, "") else None
    return LoadSource(
        file_id=params.str("dataFileId"),
        url=params.str("dataUrl"),
        inline=inline_string if inline_string is not None else body,
        inline_is_body=inline_string is None and body is not None,
        unsupported=unsupported,
    )


def load_options(params: Params, *, incremental: bool = False) -> LoadOptions:
    """The CSV options of a create or import: ``delimiter``, ``enclosure``, ``escapedBy``,
    ``withoutHeaders`` and ``columns[]`` (the header to use)."""
    enclosure = params.get("enclosure")
    if isinstance(enclosure, list):
        enclosure = enclosure[-1] if enclosure else None
    columns = params.list("columns")
    return LoadOptions(
        delimiter=params.str("delimiter"),
        enclosure=None if enclosure is None else str(enclosure),
        escaped_by=params.str("escapedBy"),
        without_headers=params.bool("withoutHeaders"),
        columns=tuple(columns) if columns else None,
        incremental=incremental,
    )
