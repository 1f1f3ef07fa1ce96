"""A job's operationParams keep Keboola's names, whatever version of params the core stored."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from entrepot.core.jobs.views import JobView
from entrepot.core.tables import jobs
from entrepot.core.tables.extract import ExportRequest
from entrepot.core.tables.filters import RowFilter, WhereFilter
from entrepot.core.tables.load import LoadOptions, StoredSource
from entrepot.faces.storage_v2.render import operation_params


def _job(kind: str, params: dict[str, Any]) -> JobView:
    return JobView(
        id=1,
        project_id=1,
        kind=kind,
        subject=None,
        status="queued",
        params=params,
        results=None,
        error=None,
        progress=0,
        attempt=0,
        run_id=None,
        created_at=datetime(2025, 6, 1, tzinfo=UTC),
        started_at=None,
        finished_at=None,
        creator=None,
    )


FILTER = RowFilter(
    changed_since=datetime(2025, 6, 1, 12, tzinfo=UTC),
    where_column="name",
    where_values=("a",),
    where_filters=(WhereFilter("id", "ge", ("3",), "INTEGER"),),
)
OPTIONS = LoadOptions(delimiter=",", enclosure='"', escaped_by="", columns=("id", "name"))


@pytest.mark.parametrize(
    ("kind", "params", "keboola"),
    [
        (
            "tables.create",
            jobs.create_params(
                "in.c-a.t", "in.c-a", "t", ["id"], StoredSource(file_id=5, inline=True), OPTIONS
            ),
            {
                "tableId": "in.c-a.t",
                "bucketId": "in.c-a",
                "name": "t",
                "primaryKey": ["id"],
                "delimiter": ",",
                "enclosure": '"',
                "escapedBy": "",
                "withoutHeaders": False,
                "columns": ["id", "name"],
                "dataFileId": 5,
                "inline": True,
            },
        ),
        (
            "tables.export",
            jobs.export_params(ExportRequest("in.c-a.t", None, FILTER, limit=3)),
            {
                "tableId": "in.c-a.t",
                "gzip": False,
                "format": "rfc",
                "limit": 3,
                **FILTER.to_params(),
            },
        ),
        (
            "tables.add_primary_key",
            jobs.add_primary_key_params("in.c-a.t", ["id"], skip_duplicates_check=False),
            {"tableId": "in.c-a.t", "columns": ["id"], "skipDuplicatesCheck": False},
        ),
        (
            "buckets.delete",
            jobs.delete_bucket_params("in.c-a", force=True),
            {"bucketId": "in.c-a", "force": True},
        ),
    ],
)
def test_version_2_params_are_shown_in_keboola_names_and_order(
    kind: str, params: dict[str, Any], keboola: dict[str, Any]
) -> None:
    shown = operation_params(_job(kind, params))
    assert shown == keboola
    assert list(shown) == list(keboola)


def test_params_of_an_older_server_and_of_other_kinds_are_shown_as_stored() -> None:
    old = {"tableId": "in.c-a.t", "incremental": True, "dataUrl": "https://example.com/a.csv"}
    assert operation_params(_job("tables.import", old)) == old
    batch = {"v": 2, "shape": "list", "queries": [{"query": "SELECT 1", "on_success": None}]}
    assert operation_params(_job("sql.batch", batch)) == batch  # not a Keboola operation: untouched
