"""Tables (``/v2/storage/tables``): create from CSV, load, export, preview, delete rows.

Sources and destinations may be paths, bytes or binary file objects. Data travels as a
file (uploaded with ``client.files``, streamed), and the table operation is a job that the
calls here wait for, reporting progress when asked.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from entrepot.client._http import Transport
from entrepot.client.files import Files
from entrepot.client.jobs import Jobs

TableDict = dict[str, Any]
Source = str | Path | bytes | IO[bytes]
JobCallback = Callable[[dict[str, Any]], None]
Where = Mapping[str, Sequence[str]]


def _time(value: str | datetime | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.isoformat()


def _filters(
    where: Where | None,
    where_operator: str,
    changed_since: str | datetime | None,
    changed_until: str | datetime | None,
) -> dict[str, Any]:
    """Keboola row filters: one column → ``whereColumn``/``whereValues``; several → ``whereFilters`` (AND)."""
    out: dict[str, Any] = {}
    if changed_since is not None:
        out["changedSince"] = _time(changed_since)
    if changed_until is not None:
        out["changedUntil"] = _time(changed_until)
    if where:
        items = list(where.items())
        if len(items) == 1:
            column, values = items[0]
            out.update(whereColumn=column, whereValues=list(values), whereOperator=where_operator)
        else:
            out["whereFilters"] = [
                {"column": column, "operator": where_operator, "values": list(values)}
                for column, values in items
            ]
    return out


def _source_name(source: Source, fallback: str) -> str:
    if isinstance(source, (str, Path)):
        return Path(source).name
    name = getattr(source, "name", None)
    return Path(name).name if isinstance(name, str) else fallback


class Tables:
    """Tables of the caller's project, as Keboola table objects."""

    def __init__(self, http: Transport, jobs: Jobs, files: Files):
        self._http = http
        self._jobs = jobs
        self._files = files

    # -- reading the catalog -------------------------------------------------------------
    def list(self, bucket_id: str | None = None) -> list[TableDict]:
        """Every table the token can read, or those of one bucket."""
        path = f"/v2/storage/buckets/{bucket_id}/tables" if bucket_id else "/v2/storage/tables"
        tables: list[TableDict] = self._http.json("GET", path)
        return tables

    def get(self, table_id: str) -> TableDict:
        """One table: columns, primary key, row count, dates, metadata."""
        table: TableDict = self._http.json("GET", f"/v2/storage/tables/{table_id}")
        return table

    # -- writing -------------------------------------------------------------------------
    def create(
        self,
        bucket_id: str,
        name: str,
        source: Source,
        *,
        primary_key: Sequence[str] = (),
        delimiter: str = ",",
        enclosure: str = '"',
        timeout: float | None = None,
        on_upload: Callable[[int, int | None], None] | None = None,
        on_progress: JobCallback | None = None,
    ) -> TableDict:
        """Create a table from a CSV with a header row; return the new table."""
        file = self._files.upload(source, name=_source_name(source, f"{name}.csv"), tags=["file-import"],
                                  on_progress=on_upload)  # fmt: skip
        data = {
            "name": name,
            "dataFileId": file["id"],
            "delimiter": delimiter,
            "enclosure": enclosure,
            "primaryKey": ",".join(primary_key),
        }
        job = self._http.json("POST", f"/v2/storage/buckets/{bucket_id}/tables-async", data=data)
        done = self._jobs.wait(job["id"], timeout=timeout, on_progress=on_progress)
        return self.get(done["results"]["id"])

    def load(
        self,
        table_id: str,
        source: Source,
        *,
        incremental: bool = False,
        columns: Sequence[str] | None = None,
        without_headers: bool = False,
        delimiter: str = ",",
        enclosure: str = '"',
        timeout: float | None = None,
        on_upload: Callable[[int, int | None], None] | None = None,
        on_progress: JobCallback | None = None,
    ) -> dict[str, Any]:
        """Load a CSV into a table: replace its rows, or (``incremental``) upsert by primary key.

        ``columns`` names the file's columns when it has no header row. Returns the import's
        statistics (``importedColumns``, ``totalRowsCount``, ...).
        """
        file = self._files.upload(source, name=_source_name(source, "import.csv"), tags=["file-import"],
                                  on_progress=on_upload)  # fmt: skip
        data: dict[str, Any] = {
            "dataFileId": file["id"],
            "incremental": "1" if incremental else "0",
            "withoutHeaders": "1" if without_headers else "0",
            "delimiter": delimiter,
            "enclosure": enclosure,
        }
        if columns:
            data["columns"] = list(columns)
        job = self._http.json("POST", f"/v2/storage/tables/{table_id}/import-async", json=data)
        done = self._jobs.wait(job["id"], timeout=timeout, on_progress=on_progress)
        results: dict[str, Any] = done.get("results") or {}
        return results

    def set_primary_key(self, table_id: str, columns: Sequence[str]) -> TableDict:
        """Replace the table's primary key (refused when the key columns hold duplicates)."""
        table: TableDict = self._http.json(
            "POST", f"/v2/storage/tables/{table_id}", json={"primaryKey": list(columns)}
        )
        return table

    def delete_rows(
        self,
        table_id: str,
        *,
        where: Where | None = None,
        where_operator: str = "eq",
        changed_since: str | datetime | None = None,
        changed_until: str | datetime | None = None,
        allow_truncate: bool = False,
        timeout: float | None = None,
    ) -> int:
        """Delete the rows matching the filters; return how many went. No filter needs ``allow_truncate``."""
        body = _filters(where, where_operator, changed_since, changed_until)
        if allow_truncate:
            body["allowTruncate"] = True
        job = self._http.json("DELETE", f"/v2/storage/tables/{table_id}/rows", json=body)
        done = self._jobs.wait(job["id"], timeout=timeout)
        return int((done.get("results") or {}).get("deletedRows", 0))

    def delete(self, table_id: str) -> None:
        """Drop the table (its export files stay)."""
        self._http.request("DELETE", f"/v2/storage/tables/{table_id}")

    # -- reading data --------------------------------------------------------------------
    def preview(
        self,
        table_id: str,
        *,
        columns: Sequence[str] | None = None,
        limit: int = 100,
        where: Where | None = None,
        where_operator: str = "eq",
        changed_since: str | datetime | None = None,
        changed_until: str | datetime | None = None,
    ) -> builtins.list[dict[str, str]]:
        """Up to ``limit`` (≤ 1000) rows as dicts of strings."""
        params: dict[str, Any] = {"format": "json", "limit": limit}
        if columns:
            params["columns"] = ",".join(columns)
        for key, value in _filters(where, where_operator, changed_since, changed_until).items():
            if key == "whereValues":
                params["whereValues[]"] = value
            elif key == "whereFilters":
                for i, f in enumerate(value):
                    params[f"whereFilters[{i}][column]"] = f["column"]
                    params[f"whereFilters[{i}][operator]"] = f["operator"]
                    params[f"whereFilters[{i}][values][]"] = f["values"]
            else:
                params[key] = value
        body = self._http.json("GET", f"/v2/storage/tables/{table_id}/data-preview", params=params)
        return [{cell["columnName"]: cell["value"] for cell in row} for row in body["rows"]]

    def export(
        self,
        table_id: str,
        dest: str | Path | IO[bytes],
        *,
        columns: Sequence[str] | None = None,
        where: Where | None = None,
        where_operator: str = "eq",
        changed_since: str | datetime | None = None,
        changed_until: str | datetime | None = None,
        limit: int | None = None,
        timeout: float | None = None,
        on_progress: JobCallback | None = None,
        on_download: Callable[[int, int | None], None] | None = None,
    ) -> dict[str, Any]:
        """Export rows to ``dest`` as one CSV with a header row; return the export file's record."""
        body: dict[str, Any] = _filters(where, where_operator, changed_since, changed_until)
        if columns:
            body["columns"] = ",".join(columns)
        if limit is not None:
            body["limit"] = limit
        job = self._http.json("POST", f"/v2/storage/tables/{table_id}/export-async", json=body)
        done = self._jobs.wait(job["id"], timeout=timeout, on_progress=on_progress)
        file_id = done["results"]["file"]["id"]
        self._files.download(file_id, dest, on_progress=on_download)
        return self._files.get(file_id)
