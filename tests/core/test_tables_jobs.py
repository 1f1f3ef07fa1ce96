"""Table and bucket job params: version 2 (snake_case) as queued, version 1 (camelCase) upgraded."""

from __future__ import annotations

from datetime import UTC, datetime

from entrepot.core.tables import jobs
from entrepot.core.tables.extract import DeleteRowsRequest, ExportRequest
from entrepot.core.tables.filters import RowFilter, WhereFilter
from entrepot.core.tables.jobs import _upgrade_params
from entrepot.core.tables.load import LoadOptions, StoredSource

OPTIONS = LoadOptions(delimiter=",", enclosure='"', escaped_by="", without_headers=False, columns=None)
FILTER = RowFilter(
    changed_since=datetime(2025, 6, 1, 12, tzinfo=UTC),
    where_column="name",
    where_operator="ne",
    where_values=("a", ""),
    where_filters=(WhereFilter("id", "gt", ("3",), "INTEGER"), WhereFilter("name", "eq", ("x", "y"))),
)


def test_version_1_create_params_upgrade_to_what_the_service_queues_now() -> None:
    old = {
        "tableId": "in.c-main.users",
        "bucketId": "in.c-main",
        "name": "users",
        "primaryKey": ["id"],
        "delimiter": ",",
        "enclosure": '"',
        "escapedBy": "",
        "withoutHeaders": False,
        "columns": None,
        "dataFileId": 7,
        "inline": True,
    }
    new = jobs.create_params(
        "in.c-main.users", "in.c-main", "users", ["id"], StoredSource(file_id=7, inline=True), OPTIONS
    )
    assert _upgrade_params(old) == new
    assert new["v"] == 2 and new["data_file_id"] == 7 and new["escaped_by"] == ""


def test_version_1_import_params_from_a_url_upgrade() -> None:
    old = {
        "tableId": "in.c-main.users",
        "incremental": True,
        "delimiter": "\t",
        "enclosure": "",
        "escapedBy": "",
        "withoutHeaders": True,
        "columns": ["id", "name"],
        "dataUrl": "https://example.com/users.csv",
    }
    options = LoadOptions(
        delimiter="\t",
        enclosure="",
        escaped_by="",
        without_headers=True,
        columns=("id", "name"),
        incremental=True,
    )
    new = jobs.import_params("in.c-main.users", StoredSource(url="https://example.com/users.csv"), options)
    assert _upgrade_params(old) == new


def test_version_1_filter_params_upgrade_with_their_where_filters() -> None:
    request = ExportRequest("in.c-main.users", ["id"], FILTER, gzip=True, format="raw", limit=10)
    old = {"tableId": "in.c-main.users", "gzip": True, "format": "raw", "columns": ["id"], "limit": 10}
    old.update(FILTER.to_params())  # what the previous server queued: the request's own names
    upgraded = _upgrade_params(old)
    assert upgraded == jobs.export_params(request)
    assert upgraded["where_filters"][0] == {
        "column": "id",
        "operator": "gt",
        "values": ["3"],
        "data_type": "INTEGER",
    }
    assert RowFilter.from_job(upgraded) == FILTER

    rows = DeleteRowsRequest("in.c-main.users", FILTER, allow_truncate=False)
    old_rows = {"tableId": "in.c-main.users", "allowTruncate": False, **FILTER.to_params()}
    assert _upgrade_params(old_rows) == jobs.delete_rows_params(rows)


def test_version_1_primary_key_and_bucket_params_upgrade() -> None:
    assert _upgrade_params(
        {"tableId": "in.c-main.t", "columns": ["id"], "skipDuplicatesCheck": True}
    ) == jobs.add_primary_key_params("in.c-main.t", ["id"], skip_duplicates_check=True)
    assert _upgrade_params({"tableId": "in.c-main.t"}) == jobs.table_params("in.c-main.t")
    assert _upgrade_params({"bucketId": "in.c-main", "force": True}) == jobs.delete_bucket_params(
        "in.c-main", force=True
    )
    assert _upgrade_params({}) == {"v": 2}  # an early export named its table only as the job's subject


def test_version_2_params_are_read_as_they_are() -> None:
    params = jobs.table_params("in.c-main.t")
    assert _upgrade_params(params) == params == {"v": 2, "table_id": "in.c-main.t"}
