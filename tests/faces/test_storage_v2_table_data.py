"""Keboola table data over HTTP: data preview (three modes), export jobs, delete rows."""

from __future__ import annotations

import csv
import gzip
import io
import time
from datetime import UTC, datetime, timedelta

import pytest
import requests

from support.jobs import wait_kbc_job

BUCKET = "in.c-data"


@pytest.fixture(scope="module")
def bucket(server) -> str:
    r = requests.post(
        f"{server.url}/v2/storage/buckets", headers=server.headers(), data={"name": "data", "stage": "in"}
    )
    assert r.status_code in (200, 201), r.text
    return r.json()["id"]


def create_table(server, bucket: str, name: str, data: str, **extra: str) -> str:
    r = requests.post(
        f"{server.url}/v2/storage/buckets/{bucket}/tables-async",
        headers=server.headers(),
        data={"name": name, "dataString": data, **extra},
    )
    job = wait_kbc_job(server, r, status="success", timeout=120)
    return job["results"]["id"]


def import_rows(server, table_id: str, data: str) -> None:
    r = requests.post(
        f"{server.url}/v2/storage/tables/{table_id}/import-async",
        headers=server.headers(),
        data={"dataString": data, "incremental": "1"},
    )
    wait_kbc_job(server, r, status="success")


def preview(server, table_id: str, **params) -> requests.Response:
    return requests.get(
        f"{server.url}/v2/storage/tables/{table_id}/data-preview", headers=server.headers(), params=params
    )


def table_detail(server, table_id: str) -> dict:
    r = requests.get(f"{server.url}/v2/storage/tables/{table_id}", headers=server.headers())
    assert r.status_code == 200, r.text
    return r.json()


@pytest.fixture(scope="module")
def two_rows(server, bucket) -> str:
    return create_table(server, bucket, "two", "col1,col2\nfoo,bar\nping,pong\n")


@pytest.fixture(scope="module")
def changes(server, bucket) -> dict:
    """A table with rows 1-3 loaded first and rows 4-5 imported after ``between``."""
    table_id = create_table(server, bucket, "changes", 'id,name,note\n1,one,"a ""q"""\n2,two,\n3,three,x\n')
    # not synchronisation (the job is done): clock readings a tick apart, even on a coarse clock
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    import_rows(server, table_id, "id,name,note\n4,four,y\n5,five,z\n")
    return {"id": table_id, "between": between}


# -- CSV preview ---------------------------------------------------------------------------------


def test_csv_preview_matches_kbcstorage_expectation(server, two_rows):
    r = preview(server, two_rows)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.text.endswith("\n") and "\r" not in r.text
    assert sorted(r.text.split("\n")) == ["", '"col1","col2"', '"foo","bar"', '"ping","pong"']


def test_csv_preview_answers_on_the_trailing_slash_path_without_redirect(server, two_rows):
    r = requests.get(f"{server.url}/v2/storage/tables/{two_rows}/data-preview/", headers=server.headers())
    assert r.status_code == 200 and r.history == []
    assert r.text.splitlines()[0] == '"col1","col2"'


def test_csv_preview_quotes_every_field_and_doubles_quotes(server, changes):
    r = preview(server, changes["id"], limit=3)
    assert r.text == '"id","name","note"\n"1","one","a ""q"""\n"2","two",""\n"3","three","x"\n'


def test_csv_preview_columns_keep_the_given_order(server, changes):
    r = preview(server, changes["id"], columns="note,id", limit=2)
    assert r.text.split("\n")[:2] == ['"note","id"', '"a ""q""","1"']


def test_csv_preview_unknown_column_is_400(server, changes):
    r = preview(server, changes["id"], columns="id,missing")
    assert r.status_code == 400
    assert "missing" in r.json()["error"]


def test_csv_preview_limit_default_and_maximum(server, changes):
    assert len(preview(server, changes["id"], limit=2).text.splitlines()) == 3
    assert preview(server, changes["id"], limit=1000).status_code == 200
    r = preview(server, changes["id"], limit=1001)
    assert r.status_code == 400 and "1000" in r.json()["error"]


def test_preview_of_unknown_table_is_404(server, bucket):
    assert preview(server, f"{bucket}.nope").status_code == 404
    assert preview(server, "some-totally-non-existent-table").status_code == 404
    # 404 wins over a bad filter
    assert preview(server, f"{bucket}.nope", changedSince="garbage").status_code == 404


@pytest.mark.parametrize("op", ["ne", "neq"])
def test_where_filters_eq_and_not_equal(server, changes, op):
    table = changes["id"]
    eq = preview(server, table, whereColumn="name", **{"whereValues[]": ["one", "three"]})
    assert eq.text.splitlines()[1:] == ['"1","one","a ""q"""', '"3","three","x"']
    ne = preview(server, table, whereColumn="name", whereOperator=op, **{"whereValues[]": ["one", "three"]})
    assert [line.split(",")[0] for line in ne.text.splitlines()[1:]] == ['"2"', '"4"', '"5"']


def test_where_filters_array_spellings(server, changes):
    r = preview(server, changes["id"], whereColumn="id", **{"whereValues[0]": "2", "whereValues[1]": "5"})
    assert [line.split(",")[0] for line in r.text.splitlines()[1:]] == ['"2"', '"5"']
    nested = {
        "whereFilters[0][column]": "id",
        "whereFilters[0][operator]": "ge",
        "whereFilters[0][values][0]": "4",
    }
    r = preview(server, changes["id"], **nested)
    assert [line.split(",")[0] for line in r.text.splitlines()[1:]] == ['"4"', '"5"']


def test_bad_filters_are_400(server, changes):
    r = preview(server, changes["id"], whereColumn="nope", whereValues="1")
    assert r.status_code == 400 and "nope" in r.json()["error"]
    r = preview(server, changes["id"], changedSince="the day before")
    assert r.status_code == 400 and "changedSince" in r.json()["error"]
    assert preview(server, changes["id"], format="xml").status_code == 400


def ids(response: requests.Response) -> list[str]:
    assert response.status_code == 200, response.text
    return [row[0] for row in list(csv.reader(io.StringIO(response.text)))[1:]]


def test_changed_since_forms(server, changes):
    table, between = changes["id"], changes["between"]
    naive = between.replace(tzinfo=None).isoformat()  # the seeds' form, read as UTC
    assert ids(preview(server, table, changedSince=naive)) == ["4", "5"]
    assert ids(preview(server, table, changedSince=between.isoformat())) == ["4", "5"]
    assert ids(preview(server, table, changedUntil=naive)) == ["1", "2", "3"]
    assert ids(preview(server, table, changedSince="-1 days")) == ["1", "2", "3", "4", "5"]
    assert ids(preview(server, table, changedSince=(datetime.now() - timedelta(days=1)).isoformat())) == [
        "1",
        "2",
        "3",
        "4",
        "5",
    ]
    past = int(between.timestamp()) - 3600
    assert ids(preview(server, table, changedSince=str(past))) == ["1", "2", "3", "4", "5"]
    future = int(time.time()) + 3600
    assert ids(preview(server, table, changedSince=str(future))) == []
    assert ids(preview(server, table, changedSince="+1 day")) == []
    assert ids(preview(server, table, changedSince=naive, changedUntil=naive)) == []


# -- JSON and row objects ------------------------------------------------------------------------


def test_json_format_has_columns_and_cells(server, two_rows):
    r = preview(server, two_rows, format="json")
    assert r.status_code == 200
    body = r.json()
    assert body["columns"] == ["col1", "col2"]
    assert body["rows"][0] == [
        {"columnName": "col1", "value": "foo", "isTruncated": False},
        {"columnName": "col2", "value": "bar", "isTruncated": False},
    ]
    assert len(body["rows"]) == 2
    assert preview(server, two_rows, format="json", limit=1001).status_code == 400


def test_offset_mode_returns_row_objects(server, changes):
    r = preview(server, changes["id"], limit=2, offset=1)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    assert r.json() == [{"id": "2", "name": "two", "note": ""}, {"id": "3", "name": "three", "note": "x"}]
    assert preview(server, changes["id"], limit=2, offset=5).json() == []
    assert preview(server, changes["id"], limit=10000, offset=0).status_code == 200
    assert preview(server, changes["id"], limit=10001, offset=0).status_code == 400


def test_offset_with_format_keeps_that_format(server, changes):
    r = preview(server, changes["id"], limit=1, offset=1, format="rfc")
    assert r.text == '"id","name","note"\n"2","two",""\n'


def export_table_paginated(server, table_id, chunk_size=10000):
    """Seed 000/001's pagination loop, verbatim but for the URL and token."""
    offset = 0
    all_data = []
    while True:
        response = requests.get(
            f"{server.url}/v2/storage/tables/{table_id}/data-preview",
            headers={"X-StorageApi-Token": server.token},
            params={"limit": chunk_size, "offset": offset},
        )
        chunk = response.json()
        if not chunk:
            break
        all_data.extend(chunk)
        offset += chunk_size
    return all_data


def test_seed_pagination_reads_every_row_once_in_order(server, changes):
    rows = export_table_paginated(server, changes["id"], chunk_size=2)
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5"]
    assert export_table_paginated(server, changes["id"]) == rows


def test_pages_follow_the_primary_key_order(server, bucket):
    table = create_table(server, bucket, "keyed", "k,v\nc,3\na,1\nb,2\n", primaryKey="k")
    assert [r["k"] for r in export_table_paginated(server, table, chunk_size=1)] == ["a", "b", "c"]


# -- export --------------------------------------------------------------------------------------


def run_export(server, table_id: str, method: str = "post", **params) -> dict:
    r = requests.request(
        method,
        f"{server.url}/v2/storage/tables/{table_id}/export-async",
        headers=server.headers(),
        **({"data": params} if method == "post" else {"params": params}),
    )
    job = wait_kbc_job(server, r, status="success", timeout=120)
    assert job["operationName"] == "tableExport" and job["tableId"] == table_id
    return job


def file_detail(server, file_id: int) -> dict:
    r = requests.get(f"{server.url}/v2/storage/files/{file_id}", headers=server.headers())
    assert r.status_code == 200, r.text
    return r.json()


def raw_file(server, file_id: int) -> bytes:
    """The stored bytes of a file, read from the blob store (what kbcstorage downloads over S3)."""
    from entrepot.core import files

    with files.open_local(server.services, server.project_id, file_id) as path:
        return path.read_bytes()


def test_export_post_writes_headerless_csv_and_a_signed_headed_url(server, two_rows):
    job = run_export(server, two_rows, gzip="0")
    result = job["results"]
    assert isinstance(result["file"]["id"], int) and result["cacheHit"] is False
    detail = file_detail(server, result["file"]["id"])
    assert detail["name"] == f"{two_rows}.csv" and "table-export" in detail["tags"]
    assert raw_file(server, result["file"]["id"]) == b'"foo","bar"\n"ping","pong"\n'
    # seed 000's flow: the url needs no token and gives a headed CSV
    data_response = requests.get(result["file"]["url"])
    assert data_response.status_code == 200
    data = list(csv.DictReader(io.StringIO(data_response.text)))
    assert data == [{"col1": "foo", "col2": "bar"}, {"col1": "ping", "col2": "pong"}]


def test_export_get_alias_like_seed_001(server, changes):
    response = requests.get(
        f"{server.url}/v2/storage/tables/{changes['id']}/export-async",
        headers={"X-StorageApi-Token": server.token},
    )
    job = wait_kbc_job(server, response, status="success")  # a JSON 202, then the finished job
    data = list(csv.DictReader(io.StringIO(requests.get(job["results"]["file"]["url"]).text)))
    assert [row["id"] for row in data] == ["1", "2", "3", "4", "5"]
    assert data[0] == {"id": "1", "name": "one", "note": 'a "q"'}


def test_gzip_export_is_stored_gzip_but_the_url_is_plain_csv(server, two_rows):
    job = run_export(server, two_rows, gzip="1")
    file_id = job["results"]["file"]["id"]
    assert file_detail(server, file_id)["name"] == f"{two_rows}.csv.gz"
    stored = raw_file(server, file_id)
    assert stored[:2] == b"\x1f\x8b"
    assert gzip.decompress(stored) == b'"foo","bar"\n"ping","pong"\n'
    plain = requests.get(job["results"]["file"]["url"])
    assert plain.content == b'"col1","col2"\n"foo","bar"\n"ping","pong"\n'


def test_export_columns_order(server, bucket):
    table = create_table(server, bucket, "four", "col1,col2,col3\nfoo,bar,king\n")
    job = run_export(server, table, columns="col3,col2")
    assert raw_file(server, job["results"]["file"]["id"]) == b'"king","bar"\n'
    plain = requests.get(job["results"]["file"]["url"]).text
    assert plain == '"col3","col2"\n"king","bar"\n'


def test_export_changed_since_and_where_filters(server, changes):
    naive = changes["between"].replace(tzinfo=None).isoformat()
    job = run_export(server, changes["id"], changedSince=naive)
    assert raw_file(server, job["results"]["file"]["id"]) == b'"4","four","y"\n"5","five","z"\n'
    job = run_export(
        server, changes["id"], "get", whereColumn="id", whereOperator="neq", **{"whereValues[]": ["1", "2"]}
    )
    assert raw_file(server, job["results"]["file"]["id"]).count(b"\n") == 3


def test_export_format_and_limit(server, changes):
    job = run_export(server, changes["id"], format="raw", limit="2", columns="id,name")
    assert raw_file(server, job["results"]["file"]["id"]) == b"1,one\n2,two\n"
    r = requests.post(
        f"{server.url}/v2/storage/tables/{changes['id']}/export-async",
        headers=server.headers(),
        data={"format": "xml"},
    )
    assert r.status_code == 400


def test_export_validates_before_queueing(server, changes, bucket):
    url = f"{server.url}/v2/storage/tables/{{}}/export-async"
    assert requests.post(url.format(f"{bucket}.nope"), headers=server.headers()).status_code == 404
    r = requests.post(url.format(changes["id"]), headers=server.headers(), data={"columns": "id,zzz"})
    assert r.status_code == 400 and "zzz" in r.json()["error"]
    r = requests.post(url.format(changes["id"]), headers=server.headers(), params={"changedSince": "someday"})
    assert r.status_code == 400


def test_large_export_streams(server, bucket):
    n = 200_000
    body = "id,name,value\n" + "".join(f"{i},name {i},{i * 7 % 1000}\n" for i in range(n))
    table = create_table(server, bucket, "large", body)
    job = run_export(server, table, gzip="1")
    stored = gzip.decompress(raw_file(server, job["results"]["file"]["id"]))
    assert stored.count(b"\n") == n
    with requests.get(job["results"]["file"]["url"], stream=True) as r:
        assert r.status_code == 200
        lines = sum(chunk.count(b"\n") for chunk in r.iter_content(1 << 20))
    assert lines == n + 1


# -- delete rows ---------------------------------------------------------------------------------


def test_delete_rows_with_a_where_filter(server, bucket):
    table = create_table(server, bucket, "del", "id,kind\n1,a\n2,b\n3,a\n4,c\n")
    r = requests.delete(
        f"{server.url}/v2/storage/tables/{table}/rows",
        headers=server.headers(),
        params={"whereColumn": "kind", "whereValues[]": ["a"]},
    )
    job = wait_kbc_job(server, r, status="success")
    assert job["operationName"] == "tableRowsDelete" and job["results"] == {"deletedRows": 2}
    assert table_detail(server, table)["rowsCount"] == 2
    assert ids(preview(server, table)) == ["2", "4"]
    # a JSON body works too (the PHP client's way)
    r = requests.delete(
        f"{server.url}/v2/storage/tables/{table}/rows",
        headers=server.headers(),
        json={"whereFilters": [{"column": "id", "operator": "eq", "values": ["4"]}]},
    )
    assert wait_kbc_job(server, r, status="success")["results"] == {"deletedRows": 1}
    assert ids(preview(server, table)) == ["2"]


def test_delete_rows_needs_a_filter_unless_allow_truncate(server, bucket):
    table = create_table(server, bucket, "trunc", "id\n1\n2\n")
    url = f"{server.url}/v2/storage/tables/{table}/rows"
    r = requests.delete(url, headers=server.headers())
    assert r.status_code == 400 and "allowTruncate" in r.json()["error"]
    assert (
        requests.delete(
            url, headers=server.headers(), params={"whereColumn": "x", "whereValues[]": "1"}
        ).status_code
        == 400
    )
    assert (
        requests.delete(
            f"{server.url}/v2/storage/tables/{bucket}.nope/rows", headers=server.headers()
        ).status_code
        == 404
    )
    job = wait_kbc_job(
        server,
        requests.delete(url, headers=server.headers(), params={"allowTruncate": "true"}),
        status="success",
    )
    assert job["results"] == {"deletedRows": 2}
    assert table_detail(server, table)["rowsCount"] == 0


def test_delete_rows_changed_since(server, bucket):
    table = create_table(server, bucket, "delsince", "id\n1\n2\n")
    # not synchronisation (the job is done): clock readings a tick apart, even on a coarse clock
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    import_rows(server, table, "id\n3\n")
    r = requests.delete(
        f"{server.url}/v2/storage/tables/{table}/rows",
        headers=server.headers(),
        json={"changedSince": between.isoformat()},
    )
    assert wait_kbc_job(server, r, status="success")["results"] == {"deletedRows": 1}
    assert ids(preview(server, table)) == ["1", "2"]


def test_read_only_token_cannot_delete_rows(server, two_rows):
    token = server.token_for(description="reader", bucket_permissions={"in.c-data": "read"})
    assert preview(server, two_rows).status_code == 200
    r = requests.get(f"{server.url}/v2/storage/tables/{two_rows}/data-preview", headers=server.headers(token))
    assert r.status_code == 200
    r = requests.delete(
        f"{server.url}/v2/storage/tables/{two_rows}/rows",
        headers=server.headers(token),
        params={"allowTruncate": "1"},
    )
    assert r.status_code == 403


def test_preview_answers_json_when_the_accept_header_asks_for_it(server):
    headers = {"X-StorageApi-Token": server.token}
    requests.post(f"{server.url}/v2/storage/buckets", headers=headers, data={"name": "accept"})
    r = requests.post(
        f"{server.url}/v2/storage/buckets/in.c-accept/tables-async",
        headers=headers,
        data={"name": "t", "dataString": "a,b\n1,2\n"},
    )
    wait_kbc_job(server, r, status="success")
    url = f"{server.url}/v2/storage/tables/in.c-accept.t/data-preview"
    as_json = requests.get(url, headers={**headers, "Accept": "application/json"})
    assert as_json.headers["content-type"].startswith("application/json")
    assert as_json.json()["columns"] == ["a", "b"]
    as_csv = requests.get(url, headers={**headers, "Accept": "text/csv, application/json"})
    assert as_csv.text == '"a","b"\n"1","2"\n'
    assert requests.get(url, headers=headers).text == '"a","b"\n"1","2"\n'  # */* means CSV
