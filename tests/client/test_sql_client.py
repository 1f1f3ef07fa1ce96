"""The SDK's SQL API (``client.sql``): queries, COPY FROM/TO, batch jobs and error mapping.

The first tests check what the SDK sends and how it reads answers against a scripted
``httpx.MockTransport``; the rest run against a real server.
"""

from __future__ import annotations

import contextlib
import csv
import gzip
import io
import json
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import duckdb
import httpx
import pytest

from entrepot.client import (
    Client,
    InvalidRequest,
    InvalidToken,
    JobCancelled,
    JobFailed,
    JobTimeout,
    PermissionDenied,
    QueryResult,
    RateLimited,
)
from support.transport import scripted


# -- against a scripted transport ------------------------------------------------------------
def _form(body: bytes) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(body.decode()).items()}


def test_query_posts_a_form_and_reads_the_json_result():
    answer = {
        "rows": [{"a": 1, "b": "x"}],
        "time": 0.01,
        "fields": {"a": {"type": "number", "pgtype": "int4"}, "b": {"type": "string", "pgtype": "text"}},
        "total_rows": 1,
    }
    with scripted(httpx.Response(200, json=answer)) as (client, rec):
        result = client.sql.query("select 1 as a, 'x' as b", skipfields=["c", "d"], dp=3, page=0)
    assert isinstance(result, QueryResult)
    assert result.rows == [{"a": 1, "b": "x"}] and result.total_rows == 1 and result.time == 0.01
    assert result.columns == ["a", "b"] and list(result) == result.rows and len(result) == 1
    request = rec.requests[0]
    assert request.method == "POST" and request.url.path == "/api/v2/sql"
    assert request.headers["X-StorageApi-Token"] == "tok"
    assert _form(rec.bodies[0]) == {
        "q": "select 1 as a, 'x' as b",
        "skipfields": "c,d",
        "dp": "3",
        "page": "0",
    }


def test_query_streams_other_formats_to_a_file_object_or_path(tmp_path):
    payload = b"a,b\n" + b"".join(b"%d,row %d\n" % (i, i) for i in range(50_000))
    with scripted(httpx.Response(200, content=payload, headers={"Content-Type": "text/csv"})) as (
        client,
        rec,
    ):
        buffer = io.BytesIO()
        assert client.sql.query("select *", format="csv", dest=buffer) == len(payload)
        assert buffer.getvalue() == payload
        path = tmp_path / "out.csv"
        assert client.sql.query("select *", format="CSV", dest=path) == len(payload)
        assert path.read_bytes() == payload and not (tmp_path / "out.csv.part").exists()
    assert _form(rec.bodies[0]) == {"q": "select *", "format": "csv"}
    with scripted(httpx.Response(200, json={})) as (client, _):
        with pytest.raises(ValueError, match="dest"):
            client.sql.query("select 1", format="csv")
        with pytest.raises(ValueError, match="format"):
            client.sql.query("select 1", format="shp", dest=io.BytesIO())


def test_carto_error_envelopes_become_typed_errors_with_the_message():
    missing = httpx.Response(400, json={"error": ['relation "nope" does not exist']})
    with scripted(missing) as (client, _), pytest.raises(InvalidRequest) as caught:
        client.sql.query("select * from nope")
    assert caught.value.message == 'relation "nope" does not exist' and caught.value.status == 400
    unknown = httpx.Response(401, json={"error": ["Unauthorized"]})
    with scripted(unknown) as (client, _), pytest.raises(InvalidToken, match="Unauthorized"):
        client.sql.query("select 1")
    denied = httpx.Response(403, json={"error": ["permission denied"]})
    with scripted(denied) as (client, _), pytest.raises(PermissionDenied, match="permission denied"):
        client.sql.batch.create("select 1")
    boom = httpx.Response(400, json={"error": ["boom", "second"]})  # a streamed answer too
    with scripted(boom) as (client, _), pytest.raises(InvalidRequest, match="boom; second"):
        client.sql.copy_to("COPY t TO STDOUT", io.BytesIO())


def test_a_statement_timeout_is_not_retried_but_a_busy_server_is():
    ok = httpx.Response(200, json={"rows": [{"a": 1}], "fields": {}, "total_rows": 1, "time": 0})
    timed_out = httpx.Response(
        429, json={"error": ["You are over platform's limits: SQL query timeout error"]}
    )
    with scripted(timed_out, ok, retries=3, backoff=0.01) as (client, recorder):
        with pytest.raises(RateLimited, match="SQL query timeout"):
            client.sql.query("select slow()")
        assert len(recorder.requests) == 1
        busy = [
            httpx.Response(503, json={"error": ["busy"]}),
            httpx.Response(429, headers={"Retry-After": "0"}),
        ]
        recorder.replies = [*busy, ok]
        assert client.sql.query("select 1").rows == [{"a": 1}]
        assert len(recorder.requests) == 4
        recorder.replies = [httpx.Response(400, json={"error": ["bad"]}), ok]
        with pytest.raises(InvalidRequest, match="bad"):
            client.sql.query("selec 1")
        assert len(recorder.requests) == 5


def test_copy_from_streams_gzip_by_default_and_plain_on_request(tmp_path):
    data = b"".join(b"%d\tname %d\n" % (i, i) for i in range(1, 20_001))
    source = tmp_path / "rows.tsv"
    source.write_bytes(data)
    query = "COPY t (a, b) FROM STDIN"
    answer = httpx.Response(200, json={"time": 0.1, "total_rows": 20_000})
    with scripted(answer) as (client, rec):
        seen: list[tuple[int, int | None]] = []
        result = client.sql.copy_from(
            query, source, chunk_size=4096, on_progress=lambda d, t: seen.append((d, t))
        )
        assert result == {"time": 0.1, "total_rows": 20_000}
        assert seen[-1] == (len(data), len(data)) and len(seen) > 1
        client.sql.copy_from(query, iter([data[:1000], b"", data[1000:]]), compress=False)
        client.sql.copy_from(query, io.BytesIO(data))
        gz = tmp_path / "rows.tsv.gz"
        gz.write_bytes(gzip.compress(data))
        client.sql.copy_from(query, gz, compress=False)  # already gzip: sent as it is
    gzipped, plain, from_file_object, pre_gzipped = zip(rec.requests, rec.bodies, strict=True)
    for request, body in (gzipped, from_file_object, pre_gzipped):
        assert request.headers["Content-Encoding"] == "gzip"
        assert gzip.decompress(body) == data
    assert gzipped[0].method == "POST" and gzipped[0].url.path == "/api/v2/sql/copyfrom"
    assert parse_qs(urlsplit(str(gzipped[0].url)).query) == {"q": [query]}
    assert len(gzipped[1]) < len(data) / 2
    assert "Content-Encoding" not in plain[0].headers and plain[1] == data
    assert plain[0].headers.get("Transfer-Encoding") == "chunked"  # streamed, no length known


def test_copy_to_streams_to_a_path_a_file_object_or_an_iterator(tmp_path):
    payload = b"".join(b"%d,x\n" % i for i in range(100_000))
    with scripted(httpx.Response(200, content=payload)) as (client, rec):
        path = tmp_path / "out.csv"
        received: list[int] = []
        assert client.sql.copy_to(
            "COPY t TO STDOUT", path, on_progress=lambda d, _: received.append(d)
        ) == len(payload)
        assert path.read_bytes() == payload and received[-1] == len(payload)
        with client.sql.copy_to_stream("COPY t TO STDOUT", chunk_size=1000) as chunks:
            assert b"".join(chunks) == payload
        long_query = "COPY (select " + "1, " * 3000 + "1) TO STDOUT"
        client.sql.copy_to(long_query, io.BytesIO())
    assert rec.requests[0].method == "GET" and rec.requests[0].url.params["q"] == "COPY t TO STDOUT"
    assert rec.requests[2].method == "POST" and _form(rec.bodies[2]) == {"q": long_query}


def _job(status: str, **extra: object) -> httpx.Response:
    return httpx.Response(
        200, json={"job_id": "j-1", "user": "default", "status": status, "query": "q", **extra}
    )


def test_batch_calls_and_wait_outcomes():
    with scripted(httpx.Response(201, json={"job_id": "j-1", "status": "pending"})) as (client, rec):
        assert client.sql.batch.create("select 1")["job_id"] == "j-1"
        client.sql.batch.create(["select 1", "select 2"])
        client.sql.batch.update("j-1", "select 3")
        client.sql.batch.get("j-1")
        client.sql.batch.cancel("j-1")
        with pytest.raises(ValueError):
            client.sql.batch.create([])
    calls = [
        (r.method, r.url.path, json.loads(b) if b else None)
        for r, b in zip(rec.requests, rec.bodies, strict=True)
    ]
    assert calls == [
        ("POST", "/api/v2/sql/job", {"query": "select 1"}),
        ("POST", "/api/v2/sql/job", {"query": ["select 1", "select 2"]}),
        ("PUT", "/api/v2/sql/job/j-1", {"query": "select 3"}),
        ("GET", "/api/v2/sql/job/j-1", None),
        ("DELETE", "/api/v2/sql/job/j-1", None),
    ]

    statuses: list[str] = []
    with scripted(_job("pending"), _job("running"), _job("running"), _job("done")) as (client, rec):
        job = client.sql.batch.wait("j-1", poll=0.01, on_status=lambda j: statuses.append(j["status"]))
    assert job["status"] == "done" and statuses == ["pending", "running", "done"] and len(rec.requests) == 4

    with (
        scripted(_job("running"), _job("failed", failed_reason='relation "x" does not exist')) as (
            client,
            _,
        ),
        pytest.raises(JobFailed) as failed,
    ):
        client.sql.batch.wait("j-1", poll=0.01)
    assert not isinstance(failed.value, JobCancelled)
    assert failed.value.message == 'relation "x" does not exist' and failed.value.job["status"] == "failed"
    assert "job j-1 failed" in str(failed.value)
    with scripted(_job("cancelled")) as (client, _), pytest.raises(JobCancelled, match="cancelled"):
        client.sql.batch.wait("j-1")
    with scripted(_job("running")) as (client, _):
        started = time.monotonic()
        with pytest.raises(JobTimeout, match="j-1 is still running"):
            client.sql.batch.wait("j-1", timeout=0.2, poll=0.05)
        assert time.monotonic() - started < 2


# -- against a real server -------------------------------------------------------------------
@pytest.fixture
def client(server):
    with Client(server.url, server.token) as c:
        yield c


@pytest.fixture
def table(client):
    """A fresh table ``(a int, b text)`` in the default schema, dropped afterwards."""
    name = f"sdk_{uuid.uuid4().hex[:8]}"
    client.sql.query(f"create table {name} (a int, b text)")
    yield name
    with contextlib.suppress(InvalidRequest):
        client.sql.query(f"drop table if exists {name}")


def _text_rows(start: int, stop: int) -> bytes:
    return b"".join(f"{i}\tname {i}\n".encode() for i in range(start, stop))


def test_query_answers_rows_fields_and_counts(client):
    result = client.sql.query("select 1 as one, 'hello' as greeting")
    assert result.rows == [{"one": 1, "greeting": "hello"}]
    assert result.total_rows == 1 and result.time >= 0
    assert result.columns == ["one", "greeting"]
    assert result.fields["one"]["type"] == "number" and result.fields["greeting"]["type"] == "string"
    assert client.sql.query("select 1 as a, 2 as b", skipfields="b").rows == [{"a": 1}]


def test_copy_from_gzip_and_plain_then_query_and_copy_to(client, table, tmp_path):
    first = tmp_path / "first.tsv"
    first.write_bytes(_text_rows(1, 1001))
    assert client.sql.copy_from(f"COPY {table} (a, b) FROM STDIN", first)["total_rows"] == 1000  # gzip

    second = _text_rows(1001, 2001)
    chunks = (second[i : i + 777] for i in range(0, len(second), 777))
    result = client.sql.copy_from(f"COPY {table} (a, b) FROM STDIN", chunks, compress=False, chunk_size=512)
    assert result["total_rows"] == 1000 and result["time"] >= 0

    csv_rows = "".join(f"{i},name {i}\n" for i in range(2001, 2101)).encode()
    csv_query = f"COPY {table} (a, b) FROM STDIN WITH (FORMAT csv)"
    assert client.sql.copy_from(csv_query, io.BytesIO(csv_rows))["total_rows"] == 100

    counted = client.sql.query(f"select count(*) as n, min(a) as lo, max(a) as hi from {table}").rows
    assert counted == [{"n": 2100, "lo": 1, "hi": 2100}]
    assert client.sql.query(f"select b from {table} where a = 1500").rows == [{"b": "name 1500"}]

    text_out = io.BytesIO()
    written = client.sql.copy_to(
        f"COPY (select a, b from {table} where a <= 2000 order by a) TO STDOUT", text_out
    )
    assert text_out.getvalue() == _text_rows(1, 2001) and written == len(text_out.getvalue())

    dest = tmp_path / "out.csv"
    client.sql.copy_to(
        f"COPY (select a, b from {table} order by a) TO STDOUT WITH (FORMAT csv, HEADER)", dest
    )
    header, *rows = list(csv.reader(dest.open(newline="")))
    assert header == ["a", "b"] and rows == [[str(i), f"name {i}"] for i in range(1, 2101)]

    with client.sql.copy_to_stream(
        f"COPY (select a from {table} where a <= 3 order by a) TO STDOUT"
    ) as stream:
        assert b"".join(stream) == b"1\n2\n3\n"


def test_query_streams_csv_json_and_parquet(client, table, tmp_path):
    client.sql.copy_from(f"COPY {table} (a, b) FROM STDIN", _text_rows(1, 11))
    buffer = io.BytesIO()
    client.sql.query(f"select a, b from {table} order by a", format="csv", dest=buffer)
    header, *rows = list(csv.reader(io.StringIO(buffer.getvalue().decode())))
    assert header == ["a", "b"] and rows == [[str(i), f"name {i}"] for i in range(1, 11)]

    as_json = io.BytesIO()
    client.sql.query(f"select a from {table} where a < 3 order by a", dest=as_json)
    assert json.loads(as_json.getvalue())["rows"] == [{"a": 1}, {"a": 2}]

    path = tmp_path / "out.parquet"
    assert client.sql.query(f"select a, b from {table} order by a", format="parquet", dest=path) > 0
    assert duckdb.sql(f"select count(*), sum(a) from '{path}'").fetchall() == [(10, 55)]


def test_sql_errors_map_to_typed_errors_with_the_server_message(client, server):
    with pytest.raises(InvalidRequest) as caught:
        client.sql.query("select * from no_such_table_here")
    assert caught.value.status == 400
    assert 'relation "no_such_table_here" does not exist' in caught.value.message
    with pytest.raises(InvalidRequest):
        client.sql.query("selec 1")
    with pytest.raises(InvalidRequest):
        client.sql.copy_to("COPY no_such_table_here TO STDOUT", io.BytesIO())
    with Client(server.url, "1-1-" + "0" * 64) as bad, pytest.raises(InvalidToken, match="Unauthorized"):
        bad.sql.query("select 1")


def test_batch_job_runs_fails_and_refuses_changes_when_finished(client, table):
    job = client.sql.batch.create(
        [f"insert into {table} (a, b) values (1, 'one')", f"insert into {table} (a, b) values (2, 'two')"]
    )
    assert job["job_id"] and job["status"] in ("pending", "running", "done")
    assert client.sql.batch.get(job["job_id"])["job_id"] == job["job_id"]
    statuses: list[str] = []
    done = client.sql.batch.wait(job["job_id"], timeout=60, on_status=lambda j: statuses.append(j["status"]))
    assert done["status"] == "done" and statuses[-1] == "done"
    assert [q["status"] for q in done["query"]] == ["done", "done"]
    assert client.sql.query(f"select a, b from {table} order by a").rows == [
        {"a": 1, "b": "one"},
        {"a": 2, "b": "two"},
    ]

    with pytest.raises(InvalidRequest, match="Cannot set status from done to cancelled"):
        client.sql.batch.cancel(job["job_id"])
    with pytest.raises(InvalidRequest, match="Job is not pending, it cannot be updated"):
        client.sql.batch.update(job["job_id"], "select 1")
    with pytest.raises(InvalidRequest, match="Job with id nope-nope not found"):
        client.sql.batch.get("nope-nope")

    failing = client.sql.batch.create("select * from no_such_table_here")
    with pytest.raises(JobFailed) as failed:
        client.sql.batch.wait(failing["job_id"], timeout=60)
    assert not isinstance(failed.value, JobCancelled)
    assert 'relation "no_such_table_here" does not exist' in failed.value.message
    assert failed.value.job["status"] == "failed"


def test_batch_job_cancelled_before_it_finishes(client):
    slow = "select count(*) from generate_series(1, 100000000000) a"
    job = client.sql.batch.create([slow, slow])
    cancelled = client.sql.batch.cancel(job["job_id"])
    assert cancelled["status"] == "cancelled"
    with pytest.raises(JobCancelled):
        client.sql.batch.wait(job["job_id"], timeout=30)
    assert client.sql.batch.get(job["job_id"])["status"] == "cancelled"


def test_batch_needs_the_master_token(client, server):
    reader = server.token_for(description="sql reader", bucket_permissions={"in.c-public": "read"})
    with Client(server.url, reader) as limited, pytest.raises(PermissionDenied, match="permission denied"):
        limited.sql.batch.create("select 1")
