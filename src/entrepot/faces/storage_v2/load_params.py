"""The parameters shared by table create and import: the data source and the CSV options."""

from __future__ import annotations

from typing import Any

from fastapi import Request

from entrepot.core import files as core_files
from entrepot.core.auth import Principal
from entrepot.core.errors import InvalidInput, NotFound, NotSupported
from entrepot.core.ids import parse_id
from entrepot.core.tables.load import LoadOptions, csv_dialect, store_inline
from entrepot.core.tables.names import validate_column_names
from entrepot.faces.http import services_of
from entrepot.faces.storage_v2.params import Params

_UNSUPPORTED_SOURCES = ("snapshotId", "dataWorkspaceId", "dataTableName", "dataObject", "sourceTableId")


def load_params(request: Request, principal: Principal, params: Params) -> dict[str, Any]:
    """Validate the data source and CSV options of a create/import call; the job's params.

    Inline data (``dataString`` or a non-empty raw CSV body) is stored as a File first, so
    any worker process can read it; the job then names it by ``dataFileId``.
    """
    services = services_of(request)
    for name in _UNSUPPORTED_SOURCES:
        if params.str(name):
            raise NotSupported(
                f"parameter {name} is not supported: entrepot loads tables from dataFileId, dataString "
                "(or a CSV request body) and dataUrl",
                code="storage.tables.sourceNotSupported",
            )
    raw_inline = None
    if (
        not params.content_type.startswith(("application/json", "application/x-www-form-urlencoded"))
        and params.raw_body.strip()
    ):
        raw_inline = params.raw_body
    data_string = params.get("dataString")
    if isinstance(data_string, list):
        data_string = data_string[-1] if data_string else None
    sources = {
        "dataFileId": params.str("dataFileId"),
        "dataString": data_string if data_string not in (None, "") else None,
        "dataUrl": params.str("dataUrl"),
    }
    given = [k for k, v in sources.items() if v is not None]
    if raw_inline is not None and sources["dataString"] is None:
        given.append("request body")
    if not given:
        raise InvalidInput(
            "give the data: one of dataFileId, dataString, dataUrl, or a CSV request body",
            code="storage.tables.noSource",
        )
    if len(given) > 1:
        raise InvalidInput(
            f"give exactly one data source, not {' and '.join(given)}", code="storage.tables.tooManySources"
        )
    enclosure = params.get("enclosure")
    if isinstance(enclosure, list):
        enclosure = enclosure[-1] if enclosure else None
    options = LoadOptions(
        dialect=csv_dialect(params.str("delimiter"), enclosure, params.str("escapedBy")),
        without_headers=params.bool("withoutHeaders"),
        columns=validate_column_names(params.list("columns"), what="columns[]")
        if params.list("columns")
        else None,
    )
    out: dict[str, Any] = options.to_params()
    if sources["dataFileId"] is not None:
        file_id = parse_id(sources["dataFileId"])
        if file_id is None:
            raise NotFound(f"file {sources['dataFileId']} not found", code="storage.files.notFound")
        core_files.get(services, principal, file_id)
        out["dataFileId"] = file_id
    elif sources["dataUrl"] is not None:
        from entrepot.core import urlguard

        urlguard.check_url(sources["dataUrl"], allowed=services.settings.url_import_allowed_hosts)
        out["dataUrl"] = sources["dataUrl"]
    else:
        data = str(sources["dataString"]).encode() if sources["dataString"] is not None else raw_inline or b""
        file = store_inline(
            services,
            principal.project_id or 0,
            principal.token_id,
            data,
            run_id=request.headers.get("x-kbc-runid") or None,
        )
        out["dataFileId"] = file.id
        out["inline"] = True
    return out
