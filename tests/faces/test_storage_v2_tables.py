"""Keboola tables over HTTP: create, import (full, incremental, upsert), bad input, PK, metadata, delete."""

from __future__ import annotations

import gzip
import itertools
from pathlib import Path
from typing import Any

import pytest
import requests

from entrepot.core import files as core_files
from support.jobs import wait_kbc_job

_names = itertools.count(1)


def _api(server) -> str:  # type: ignore[no-untyped-def]
    return f"{server.url}/v2/storage"


@pytest.fixture(scope="module")
def bucket(server) -> str:  # type: ignore[no-untyped-def]
    r = requests.post(f"{_api(server)}/buckets", headers=server.headers(), data={"name": "tables"})
    assert r.status_code == 201
    return "in.c-tables"


def _create(server, bucket: str, csv: str, **params: Any) -> tuple[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    name = params.pop("name", f"t{next(_names)}")
    r = requests.post(
        f"{_api(server)}/buckets/{bucket}/tables-async",
        headers={**server.headers(), "Content-Type": "text/csv"},
        params={"name": name, "dataString": csv, **params},
    )
    return f"{bucket}.{name}", wait_kbc_job(server, r)


def _import(server, table_id: str, csv: str, **params: Any) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = requests.post(
        f"{_api(server)}/tables/{table_id}/import-async",
        headers={**server.headers(), "Content-Type": "text/csv"},
        params={"dataString": csv, **params},
    )
    return wait_kbc_job(server, r)


def _rows(server, table_id: str) -> list[tuple[Any, ...]]:  # type: ignore[no-untyped-def]
    """The table's rows straight from the lake, without _timestamp, sorted."""
    bucket, name = table_id.rsplit(".", 1)
    with server.services.engine.lake("default").cursor(write=False) as cur:
        rows = cur.execute(f'SELECT * EXCLUDE (_timestamp) FROM "{bucket}"."{name}"').fetchall()
    return sorted(rows, key=lambda r: tuple("" if v is None else v for v in r))


def _detail(server, table_id: str) -> dict[str, Any]:  # type: ignore[no-untyped-def]
    r = requests.get(f"{_api(server)}/tables/{table_id}", headers=server.headers())
    assert r.status_code == 200, r.text
    return r.json()


# -- create ------------------------------------------------------------------------------------


def test_create_from_query_datastring_like_the_seeds(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, job = _create(server, bucket, "id,name,value\n1,foo,100\n2,bar,200", primaryKey="id")
    assert job["status"] == "success", job
    assert job["operationName"] == "tableCreate"
    assert job["results"]["id"] == table_id
    detail = _detail(server, table_id)
    assert detail["columns"] == ["id", "name", "value"]
    assert detail["primaryKey"] == ["id"]
    assert detail["rowsCount"] == 2
    for key in (
        "uri",
        "name",
        "created",
        "lastImportDate",
        "lastChangeDate",
        "metadata",
        "columnMetadata",
        "bucket",
    ):
        assert key in detail
    assert detail["bucket"]["id"] == bucket and table_id in detail["uri"]
    assert _rows(server, table_id) == [("1", "foo", "100"), ("2", "bar", "200")]
    listed = requests.get(f"{_api(server)}/tables", headers=server.headers()).json()
    assert any(t["id"] == table_id and t["rowsCount"] == 2 for t in listed)


def test_create_from_form_datastring_and_composite_primary_key(server, bucket) -> None:  # type: ignore[no-untyped-def]
    r = requests.post(
        f"{_api(server)}/buckets/{bucket}/tables-async",
        headers=server.headers(),
        data={
            "name": "formtable",
            "dataString": "col1,col2\nfoo,bar\n",
            "primaryKey": "col1,col2",
            "delimiter": ",",
            "enclosure": '"',
            "escapedBy": "",
        },
    )
    job = wait_kbc_job(server, r)
    assert job["status"] == "success", job
    detail = _detail(server, f"{bucket}.formtable")
    assert detail["primaryKey"] == ["col1", "col2"] and detail["rowsCount"] == 1


def test_create_from_data_file_id_gzipped_with_tab_delimiter(server, bucket, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "upload"
    path.write_bytes(gzip.compress(b"a\tb\n1\tx\n2\ty\n"))
    file = core_files.create_from_path(
        server.services, server.project_id, None, path, name="upload", tags=["file-import"]
    )
    r = requests.post(
        f"{_api(server)}/buckets/{bucket}/tables-async",
        headers=server.headers(),
        data={"name": "fromfile", "dataFileId": str(file.id), "delimiter": "\\t"},
    )
    job = wait_kbc_job(server, r)
    assert job["status"] == "success", job
    assert _rows(server, f"{bucket}.fromfile") == [("1", "x"), ("2", "y")]


def test_create_with_duplicate_keys_keeps_the_last(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, job = _create(server, bucket, "id,v\n1,a\n1,b\n2,c\n", primaryKey="id")
    assert job["status"] == "success", job
    assert _rows(server, table_id) == [("1", "b"), ("2", "c")]


@pytest.mark.parametrize(
    ("csv", "params", "fragment"),
    [
        ('a,b\n"1,2\n', {}, "line"),
        ("a,b\n1,2,3\n", {}, "line 2"),
        ("a,a\n1,2\n", {}, "twice"),
        ("a,\n1,2\n", {}, "no name"),
        ("id,v\n1,2\n", {"primaryKey": "nope"}, "nope"),
        ("_timestamp\n1\n", {}, "reserved"),
    ],
)
def test_create_with_bad_input_fails_and_creates_nothing(server, bucket, csv, params, fragment) -> None:  # type: ignore[no-untyped-def]
    table_id, job = _create(server, bucket, csv, **params)
    assert job["status"] == "error", job
    assert fragment in job["error"]["message"], job["error"]
    assert requests.get(f"{_api(server)}/tables/{table_id}", headers=server.headers()).status_code == 404


def test_create_validates_synchronously(server, bucket) -> None:  # type: ignore[no-untyped-def]
    url = f"{_api(server)}/buckets/{bucket}/tables-async"
    h = server.headers()
    assert (
        requests.post(
            f"{_api(server)}/buckets/in.c-missing/tables-async",
            headers=h,
            data={"name": "x", "dataString": "a\n1"},
        ).status_code
        == 404
    )
    assert requests.post(url, headers=h, data={"name": "bad name", "dataString": "a\n1"}).status_code == 400
    assert requests.post(url, headers=h, data={"name": "nosource"}).status_code == 400
    assert (
        requests.post(
            url, headers=h, data={"name": "two", "dataString": "a\n1", "dataFileId": "1"}
        ).status_code
        == 400
    )
    assert requests.post(url, headers=h, data={"name": "nofile", "dataFileId": "999999"}).status_code == 404
    assert requests.post(url, headers=h, data={"name": "snap", "snapshotId": "5"}).status_code == 501
    r = requests.post(
        url, headers=h, data={"name": "dialect", "dataString": "a\n1", "enclosure": '"', "escapedBy": "\\"}
    )
    assert r.status_code == 400
    for target in ("http://127.0.0.1/x.csv", "http://10.0.0.1/x.csv"):
        r = requests.post(url, headers=h, data={"name": "url", "dataUrl": target})
        assert r.status_code == 400, r.text
    table_id, _ = _create(server, bucket, "a\n1\n")
    r = requests.post(url, headers=h, data={"name": table_id.rsplit(".", 1)[1], "dataString": "a\n1"})
    assert r.status_code == 400 and r.json()["code"] == "storage.tables.alreadyExists"


def test_unknown_table_is_404(server, bucket) -> None:  # type: ignore[no-untyped-def]
    h = server.headers()
    for table in ("some-totally-non-existent-table", f"{bucket}.nope", "in.c-nope.t"):
        assert requests.get(f"{_api(server)}/tables/{table}", headers=h).status_code == 404
        assert requests.delete(f"{_api(server)}/tables/{table}", headers=h).status_code == 404
        assert (
            requests.post(
                f"{_api(server)}/tables/{table}/import-async", headers=h, data={"dataString": "a\n1"}
            ).status_code
            == 404
        )


# -- import ------------------------------------------------------------------------------------


def test_full_load_replaces_rows(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, _ = _create(server, bucket, "col1,col2\nfoo,bar\n")
    job = _import(server, table_id, "col1,col2\nping,pong\n")
    assert job["status"] == "success" and job["operationName"] == "tableImport"
    assert job["results"]["totalRowsCount"] == 1
    assert _detail(server, table_id)["rowsCount"] == 1
    assert _rows(server, table_id) == [("ping", "pong")]


def test_incremental_load_with_primary_key_upserts_last_duplicate_wins(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, _ = _create(server, bucket, "id,name\n1,a\n2,b\n3,c\n", primaryKey="id")
    job = _import(server, table_id, "name,id\nz,1\ny,1\nn,4\n", incremental="1")
    assert job["status"] == "success", job
    assert _rows(server, table_id) == [("1", "y"), ("2", "b"), ("3", "c"), ("4", "n")]
    assert _detail(server, table_id)["rowsCount"] == 4


def test_incremental_load_without_primary_key_appends(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, _ = _create(server, bucket, "col1,col2\nfoo,bar\n")
    job = _import(server, table_id, "col1,col2\nfoo,bar\n", incremental="1")
    assert job["status"] == "success"
    assert _detail(server, table_id)["rowsCount"] == 2


def test_import_adds_new_columns_and_ignores_primary_key_array(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, _ = _create(server, bucket, "a\n1\n")
    r = requests.post(
        f"{_api(server)}/tables/{table_id}/import-async",
        headers=server.headers(),
        data={"dataString": "a,b\n2,x\n", "incremental": "1", "primaryKey[]": ["a", "b"]},
    )
    job = wait_kbc_job(server, r)
    assert job["status"] == "success", job
    detail = _detail(server, table_id)
    assert detail["columns"] == ["a", "b"] and detail["primaryKey"] == []
    assert _rows(server, table_id) == [("1", ""), ("2", "x")]  # existing rows get "" like any empty value


def test_import_without_headers_uses_table_order_or_columns(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, _ = _create(server, bucket, "a,b\n1,2\n")
    assert _import(server, table_id, "3,4\n", incremental="1", withoutHeaders="1")["status"] == "success"
    r = requests.post(
        f"{_api(server)}/tables/{table_id}/import-async",
        headers=server.headers(),
        data={"dataString": "6,5\n", "incremental": "1", "columns[]": ["b", "a"]},
    )
    assert wait_kbc_job(server, r)["status"] == "success"
    assert _rows(server, table_id) == [("1", "2"), ("3", "4"), ("5", "6")]


@pytest.mark.parametrize(
    ("csv", "fragment"),
    [
        ('id,v\n1,"x\n', "line"),
        ("id,v\n1,2,3\n", "line 2"),
        (b"id,v\n1,\xff\xfe\n", "line 2"),
        ("id,id\n1,2\n", "twice"),
        ("id,\n1,2\n", "no name"),
        ("id,w\n1,2\n", "'v'"),
    ],
)
def test_bad_import_leaves_table_unchanged(server, bucket, csv, fragment) -> None:  # type: ignore[no-untyped-def]
    table_id, _ = _create(server, bucket, "id,v\n1,a\n2,b\n", primaryKey="id")
    before = _rows(server, table_id)
    body = csv if isinstance(csv, bytes) else csv.encode()
    r = requests.post(
        f"{_api(server)}/tables/{table_id}/import-async",
        headers={**server.headers(), "Content-Type": "text/csv"},
        data=body,
    )
    job = wait_kbc_job(server, r)
    assert job["status"] == "error", job
    assert fragment in job["error"]["message"], job["error"]
    got = requests.get(f"{_api(server)}/jobs/{job['id']}", headers=server.headers()).json()
    assert got["status"] == "error" and got["error"]["message"] == job["error"]["message"]
    assert _rows(server, table_id) == before
    detail = _detail(server, table_id)
    assert detail["rowsCount"] == 2 and detail["columns"] == ["id", "v"]


def test_full_load_that_fails_late_rolls_back(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, _ = _create(server, bucket, "id,v\n1,a\n")
    job = _import(server, table_id, "id,v,new\n" + "".join(f"{i},x,y\n" for i in range(500)) + "9,9\n")
    assert job["status"] == "error"
    assert _rows(server, table_id) == [("1", "a")]
    assert _detail(server, table_id)["columns"] == ["id", "v"]


# -- primary key, delete, optimize, metadata --------------------------------------------------


def test_post_primary_key_on_table_url_like_seed_000(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, _ = _create(server, bucket, "id,v\n1,a\n2,b\n")
    r = requests.post(
        f"{_api(server)}/tables/{table_id}", headers=server.headers(), json={"primaryKey": ["id"]}
    )
    assert r.status_code == 200, r.text
    assert r.json()["primaryKey"] == ["id"]
    r = requests.put(
        f"{_api(server)}/tables/{table_id}", headers=server.headers(), json={"primaryKey": "id,v"}
    )
    assert r.status_code == 200 and r.json()["primaryKey"] == ["id", "v"]
    dup_id, _ = _create(server, bucket, "id,v\n1,a\n1,b\n")
    r = requests.post(
        f"{_api(server)}/tables/{dup_id}", headers=server.headers(), json={"primaryKey": ["id"]}
    )
    assert r.status_code == 400 and "duplicate" in r.json()["error"]
    r = requests.post(
        f"{_api(server)}/tables/{dup_id}", headers=server.headers(), json={"primaryKey": ["zzz"]}
    )
    assert r.status_code == 400


def test_primary_key_jobs_add_and_remove(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, _ = _create(server, bucket, "id,v\n1,a\n1,b\n")
    h = server.headers()
    job = wait_kbc_job(
        server,
        requests.post(f"{_api(server)}/tables/{table_id}/primary-key", headers=h, data={"columns[]": ["id"]}),
    )
    assert job["status"] == "error" and "duplicate" in job["error"]["message"]
    job = wait_kbc_job(
        server,
        requests.post(
            f"{_api(server)}/tables/{table_id}/primary-key/",
            headers=h,
            data={"columns[]": ["id"], "skipDuplicatesCheck": "1"},
        ),
    )
    assert job["status"] == "success" and job["operationName"] == "tablePrimaryKeyAdd"
    assert _detail(server, table_id)["primaryKey"] == ["id"]
    r = requests.post(f"{_api(server)}/tables/{table_id}/primary-key", headers=h, data={"columns[]": ["v"]})
    assert r.status_code == 400
    job = wait_kbc_job(server, requests.delete(f"{_api(server)}/tables/{table_id}/primary-key", headers=h))
    assert job["status"] == "success" and job["operationName"] == "tablePrimaryKeyDelete"
    assert _detail(server, table_id)["primaryKey"] == []


def test_delete_table_sync_and_async(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, _ = _create(server, bucket, "a\n1\n")
    r = requests.delete(f"{_api(server)}/tables/{table_id}", headers=server.headers())
    assert r.status_code == 204
    assert requests.get(f"{_api(server)}/tables/{table_id}", headers=server.headers()).status_code == 404
    table_id, _ = _create(server, bucket, "a\n1\n")
    job = wait_kbc_job(
        server,
        requests.delete(
            f"{_api(server)}/tables/{table_id}", headers=server.headers(), params={"async": "true"}
        ),
    )
    assert job["status"] == "success" and job["operationName"] == "tableDrop"
    assert requests.get(f"{_api(server)}/tables/{table_id}", headers=server.headers()).status_code == 404


def test_optimize_is_a_job_that_succeeds(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, _ = _create(server, bucket, "a\n1\n")
    for i in range(3):
        _import(server, table_id, f"a\n{i}\n", incremental="1")
    job = wait_kbc_job(
        server, requests.post(f"{_api(server)}/tables/{table_id}/optimize", headers=server.headers())
    )
    assert job["status"] == "success", job
    assert job["operationName"] == "tableOptimize"
    assert _detail(server, table_id)["rowsCount"] == 4


def test_table_metadata_upsert_list_delete(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, _ = _create(server, bucket, "col1,col2\nfoo,bar\n")
    url = f"{_api(server)}/tables/{table_id}/metadata"
    body = {
        "provider": "test",
        "metadata": [{"key": "k", "value": "v1"}],
        "columnsMetadata": [[{"key": "ck", "value": "cv", "columnName": "col1"}]],
    }
    r = requests.post(url, headers=server.headers(), json=body)
    assert r.status_code == 201, r.text
    body["metadata"] = [{"key": "k", "value": "v2"}]
    r = requests.post(url, headers=server.headers(), json=body)
    assert r.status_code == 201
    items = requests.get(url, headers=server.headers()).json()
    assert len(items) == 1 and items[0]["value"] == "v2" and isinstance(items[0]["id"], str)
    detail = _detail(server, table_id)
    assert len(detail["columnMetadata"]["col1"]) == 1
    assert set(detail["columnMetadata"]["col1"][0]) >= {"id", "key", "value", "provider", "timestamp"}
    r = requests.delete(f"{url}/{items[0]['id']}", headers=server.headers())
    assert r.status_code == 204
    assert requests.get(url, headers=server.headers()).json() == []
    assert requests.delete(f"{url}/{items[0]['id']}", headers=server.headers()).status_code == 404
    assert requests.post(url, headers=server.headers(), json={"provider": "test"}).status_code == 400


# -- hostile input (found by fuzzing) ----------------------------------------------------------


def test_hostile_create_and_import_input_is_rejected_and_changes_nothing(server, bucket) -> None:  # type: ignore[no-untyped-def]
    url = f"{_api(server)}/buckets/{bucket}/tables-async"
    h = server.headers()
    # a name with a trailing newline once passed the name check ('$' matches before '\n')
    r = requests.post(url, headers=h, data={"name": "nl\n", "dataString": "a\n1"})
    assert r.status_code == 400 and "invalid table name" in r.json()["error"], r.text
    r = requests.post(url, headers=h, data={"name": "big", "dataFileId": "99999999999999999999999"})
    assert r.status_code == 404, r.text
    r = requests.post(url, headers=h, data={"name": "arabic", "dataFileId": "\u0661"})  # not file 1
    assert r.status_code == 404, r.text
    r = requests.post(url, headers=h, data={"name": "pk", "dataString": "a\n1", "primaryKey[0][x]": "a"})
    assert r.status_code == 400 and "primaryKey" in r.json()["error"], r.text
    r = requests.post(url, headers=h, data={"name": "nul", "dataString": "a\n1", "delimiter": "\x00"})
    assert r.status_code == 400 and "NUL" in r.json()["error"], r.text
    wide = ",".join(f"c{i}" for i in range(1001))
    table_id, job = _create(server, bucket, f"{wide}\n")
    assert job["status"] == "error" and "at most 1000" in job["error"]["message"], job

    table_id, job = _create(server, bucket, "id,v\n1,a\n2,b\n", primaryKey="id")
    before = _rows(server, table_id)
    job = _import(server, table_id, "id,v," + ",".join(f"x{i}" for i in range(999)) + "\n")
    assert job["status"] == "error" and "at most 1000" in job["error"]["message"], job
    r = requests.post(
        f"{_api(server)}/tables/{table_id}/import-async",
        headers=h,
        data={"dataString": "id,v\n3,c\n", "delimiter": "\x00"},
    )
    assert r.status_code == 400, r.text
    r = requests.delete(
        f"{_api(server)}/tables/{table_id}/rows",
        headers=h,
        json={"whereColumn": "id", "whereValues": {"a": 1}},
    )
    assert r.status_code == 400 and "named keys" in r.json()["error"], r.text
    assert _rows(server, table_id) == before


def test_hostile_metadata_is_400(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, _ = _create(server, bucket, "id\n1\n")
    url = f"{_api(server)}/tables/{table_id}/metadata"
    h = server.headers()
    for body, fragment in [
        ({"provider": "p", "metadata": [{"key": "k", "value": {"a": 1}}]}, "must be a string"),
        ({"provider": "p", "metadata": [{"key": "k\x00", "value": "v"}]}, "NUL"),
        ({"provider": "p", "metadata": [{"key": "k", "value": "v\x00"}]}, "NUL"),
        ({"provider": "p" * 256, "metadata": [{"key": "k", "value": "v"}]}, "at most 255"),
        ({"provider": "p", "metadata": [{"key": "k" * 256, "value": "v"}]}, "at most 255"),
    ]:
        r = requests.post(url, headers=h, json=body)
        assert r.status_code == 400 and fragment in r.json()["error"], r.text
    r = requests.delete(f"{url}/99999999999999999999", headers=h)
    assert r.status_code == 404, r.text
    assert requests.get(url, headers=h).json() == []


def test_columns_added_by_an_import_are_empty_strings_for_existing_rows(server, bucket) -> None:  # type: ignore[no-untyped-def]
    table_id, job = _create(server, bucket, "id,a\n1,x\n2,y\n", primaryKey="id")
    assert job["status"] == "success"
    assert _import(server, table_id, "id,a,b\n3,z,\n", incremental="1")["status"] == "success"
    assert _rows(server, table_id) == [("1", "x", ""), ("2", "y", ""), ("3", "z", "")]
    r = requests.get(
        f"{_api(server)}/tables/{table_id}/data-preview",
        headers=server.headers(),
        params={"whereColumn": "b", "whereValues[]": [""]},
    )
    assert r.text.count("\n") == 4  # header + all three rows


def test_table_and_bucket_names_that_differ_only_in_case_clash(server) -> None:  # type: ignore[no-untyped-def]
    headers = server.headers()
    assert (
        requests.post(f"{_api(server)}/buckets", headers=headers, data={"name": "Cased"}).status_code == 201
    )
    clash = requests.post(f"{_api(server)}/buckets", headers=headers, data={"name": "cased"})
    assert clash.status_code == 400 and "letter case" in clash.json()["error"]
    table_id, job = _create(server, "in.c-Cased", "id\n1\n", name="Secret")
    assert job["status"] == "success"
    r = requests.post(
        f"{_api(server)}/buckets/in.c-Cased/tables-async",
        headers={**headers, "Content-Type": "text/csv"},
        params={"name": "secret", "dataString": "id\n666\n"},
    )
    assert r.status_code == 400 and "letter case" in r.json()["error"]
    assert _rows(server, table_id) == [("1",)]
