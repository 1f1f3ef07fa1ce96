"""The official CARTO SDK (``carto`` 1.11.3 on ``pyrestcli``), unmodified, against entrepot's SQL API.

Base URL ``<server>/user/default/``: ``SQLClient`` (POST, GET, json/csv/geojson, skipfields,
errors), ``NoAuthClient`` on public and private tables, ``BatchSQLClient`` (create, read, update,
cancel, wait for completion, single and multi-query jobs) and ``CopySQLClient`` (COPY FROM a
path, a file object and a generator, gzip or not; COPY TO a path, a file object and a stream,
byte-exact). The fixture flow of the SDK's own suite (a 3-query batch job that drops, creates and
cartodbfies a table) and the README's COPY example run as written. Also the prefix-less form of
the API (``/api/v2/sql`` with the project from the token or from the ``Host`` header).
"""

from __future__ import annotations

import csv
import io
import random
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from sqlalchemy import select

from entrepot.core.catalog import Bucket, StoredTable
from entrepot.core.projects import create_project
from support.server import RunningServer, start_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pkg_resources deprecation inside carto.auth
    from carto.auth import APIKeyAuthClient
    from carto.exceptions import CartoException
    from carto.sql import BatchSQLClient, CopySQLClient, SQLClient
    from pyrestcli.auth import NoAuthClient  # the README's carto.auth.NoAuthClient does not exist in 1.11.3

pytestmark = pytest.mark.filterwarnings("ignore:You are using methods other than get")

FIXTURES = Path(__file__).parent / "carto_fixtures"
BATCH_TERMINAL_STATES = ("done", "failed", "cancelled", "unknown")

# the SDK suite's copy table (tests/test_sql_copy.py)
COPY_TABLE = "carto_python_sdk_copy_test"
SETUP_QUERIES = [
    f"DROP TABLE IF EXISTS {COPY_TABLE}",
    f"""
    CREATE TABLE {COPY_TABLE} (
      the_geom geometry(Geometry,4326),
      name text,
      age integer
    )
    """,
    f"SELECT CDB_CartodbfyTable(current_schema, '{COPY_TABLE}')",
]
TABLE_CONTENTS = [
    b"the_geom,name,age\n",
    b"SRID=4326;POINT(-126 54),North West,89\n",
    b"SRID=4326;POINT(-96 34),South East,99\n",
    b"SRID=4326;POINT(-6 -25),Souther Easter,124\n",
]
COPY_FROM_QUERY = f"COPY {COPY_TABLE} (the_geom, name, age) FROM stdin WITH (FORMAT csv, HEADER true)"

COPYTO_QUERY = (
    "COPY (SELECT i cartodb_id, ST_AsEWKT(ST_SetSRID(ST_MakePoint(i, i),4326)) the_geom "
    "FROM generate_series(1,10) i) TO STDOUT"
)
COPYTO_EXPECTED = "".join(f"{i}\tSRID=4326;POINT({i} {i})\n" for i in range(1, 11)).encode()

EWKB_4326 = "0101000020E6100000"  # little-endian point with SRID 4326
EWKB_3857 = "0101000020110F0000"  # little-endian point with SRID 3857


def _auth(server: RunningServer, token: str | None = None) -> APIKeyAuthClient:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "You are using unencrypted API key authentication"
        return APIKeyAuthClient(api_key=token or server.token, base_url=f"{server.url}/user/default/")


def _wait_job(batch: BatchSQLClient, job: dict[str, Any], timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while job["status"] not in BATCH_TERMINAL_STATES:
        assert time.monotonic() < deadline, job
        time.sleep(0.2)
        job = batch.read(job["job_id"])
    return job


def _make_public(server: RunningServer, name: str, privacy: str = "public") -> None:
    """Mark a table of the default project's default schema public (no HTTP API for it yet)."""
    assert "privacy" in StoredTable.__table__.c, "the tables catalog has no privacy column yet"
    with server.services.catalog.session() as s:
        row = s.scalars(
            select(StoredTable)
            .join(Bucket, Bucket.id == StoredTable.bucket_id)
            .where(
                StoredTable.project_id == server.project_id,
                Bucket.ident == "in.c-public",
                StoredTable.name == name,
            )
        ).one()
        row.privacy = privacy


@pytest.fixture(scope="module")
def auth(server) -> APIKeyAuthClient:  # type: ignore[no-untyped-def]
    return _auth(server)


@pytest.fixture(scope="module")
def sql(auth) -> SQLClient:  # type: ignore[no-untyped-def]
    return SQLClient(auth)


@pytest.fixture(scope="module")
def batch(auth) -> BatchSQLClient:  # type: ignore[no-untyped-def]
    return BatchSQLClient(auth)


@pytest.fixture(scope="module")
def copy_client(auth) -> CopySQLClient:  # type: ignore[no-untyped-def]
    return CopySQLClient(auth)


@pytest.fixture(scope="module")
def tornados(sql) -> str:  # type: ignore[no-untyped-def]
    """A cartodbfied point dataset of two rows (the suite's EXISTING_POINT_DATASET)."""
    sql.send("CREATE TABLE tornados (the_geom geometry(Geometry,4326), name text, magnitude integer)")
    sql.send("SELECT CDB_CartodbfyTable(current_schema, 'tornados')")
    sql.send(
        "INSERT INTO tornados (the_geom, name, magnitude) VALUES "
        "('SRID=4326;POINT(-97.5 35.25)'::geometry, 'moore', 5), "
        "(ST_SetSRID(ST_MakePoint(-95.75, 36.5), 4326), 'tulsa', 3)"
    )
    return "tornados"


@pytest.fixture(scope="module")
def copy_table(batch) -> str:  # type: ignore[no-untyped-def]
    """The SDK suite's fixture: one batch job drops, creates and cartodbfies the copy table."""
    job = _wait_job(batch, batch.create(SETUP_QUERIES))
    assert job["status"] == "done", job
    assert [q["status"] for q in job["query"]] == ["done", "done", "done"]
    return COPY_TABLE


def _fresh_cartodbfied(sql: SQLClient, name: str) -> str:
    sql.send(f"DROP TABLE IF EXISTS {name}")
    sql.send(f"CREATE TABLE {name} (the_geom geometry(Geometry,4326), name text, age integer)")
    sql.send(f"SELECT CDB_CartodbfyTable(current_schema, '{name}')")
    return name


# --- SQLClient ------------------------------------------------------------------------------


@pytest.mark.parametrize("do_post", [True, False], ids=["post", "get"])
def test_sql_send(sql, tornados, do_post) -> None:  # type: ignore[no-untyped-def]
    data = sql.send(f"select * from {tornados} order by cartodb_id", do_post=do_post)
    assert data is not None
    assert {"rows", "total_rows", "time", "fields"} <= set(data)
    assert data["total_rows"] == 2 and len(data["rows"]) == 2
    assert isinstance(data["time"], float)
    first = data["rows"][0]
    assert first["cartodb_id"] == 1 and first["name"] == "moore" and first["magnitude"] == 5
    assert first["the_geom"].upper().startswith(EWKB_4326)
    assert first["the_geom_webmercator"].upper().startswith(EWKB_3857)
    assert data["fields"]["the_geom"]["type"] == "geometry"
    assert data["fields"]["the_geom"]["srid"] == 4326
    assert data["fields"]["name"]["type"] == "string"
    assert data["fields"]["cartodb_id"]["type"] == "number"


def test_sql_long_query_goes_by_post(sql, tornados) -> None:  # type: ignore[no-untyped-def]
    query = f"select name from {tornados} where name <> '{'x' * 1100}' order by name"
    data = sql.send(query, do_post=False)  # >= 1024 characters: the SDK POSTs anyway
    assert [r["name"] for r in data["rows"]] == ["moore", "tulsa"]


def test_sql_v1_alias(auth) -> None:  # type: ignore[no-untyped-def]
    data = SQLClient(auth, api_version="v1").send("select 1 as one")
    assert data["rows"] == [{"one": 1}]


def test_sql_format_csv_is_raw_bytes(sql, tornados) -> None:  # type: ignore[no-untyped-def]
    data = sql.send(f"select cartodb_id, name, magnitude from {tornados} order by cartodb_id", format="csv")
    assert isinstance(data, bytes)
    rows = list(csv.reader(io.StringIO(data.decode())))
    assert rows == [["cartodb_id", "name", "magnitude"], ["1", "moore", "5"], ["2", "tulsa", "3"]]


def test_sql_format_geojson(sql, tornados) -> None:  # type: ignore[no-untyped-def]
    data = sql.send(f"select * from {tornados} order by cartodb_id", format="geojson")
    assert data["type"] == "FeatureCollection"
    assert len(data["features"]) == 2
    feature = data["features"][0]
    assert feature["type"] == "Feature"
    assert feature["geometry"] == {"type": "Point", "coordinates": [-97.5, 35.25]}
    assert feature["properties"] == {"cartodb_id": 1, "name": "moore", "magnitude": 5}


def test_sql_skipfields(sql, tornados) -> None:  # type: ignore[no-untyped-def]
    skipped = sql.send(f"select * from {tornados}", skipfields="the_geom_webmercator")
    assert all("the_geom_webmercator" not in row for row in skipped["rows"])
    assert "the_geom_webmercator" not in skipped["fields"]
    assert all("the_geom" in row for row in skipped["rows"])
    full = sql.send(f"select * from {tornados}")
    assert all("the_geom_webmercator" in row for row in full["rows"])
    assert "the_geom_webmercator" in full["fields"]


@pytest.mark.parametrize("do_post", [True, False], ids=["post", "get"])
def test_sql_error(sql, do_post) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CartoException) as exc:
        sql.send("select * from non_existing_dataset", do_post=do_post)
    assert "does not exist" in str(exc.value)
    assert "non_existing_dataset" in str(exc.value)


def test_sql_error_positional_dict_as_in_the_sdk_suite(sql) -> None:  # type: ignore[no-untyped-def]
    # test_sql_error_get passes {'do_post': False} as parse_json: really a POST
    with pytest.raises(CartoException) as exc:
        sql.send("select * from non_existing_dataset", {"do_post": False})
    assert "does not exist" in str(exc.value)


def test_sql_syntax_error_message(sql) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CartoException) as exc:
        sql.send("selec 1")
    assert "syntax" in str(exc.value).lower()


def test_unknown_api_key_is_refused(server) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CartoException):
        SQLClient(_auth(server, "1-1-" + "x" * 40)).send("select 1 as one")


# --- NoAuthClient -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def public_and_private(sql, server) -> tuple[str, str]:  # type: ignore[no-untyped-def]
    for name in ("open_places", "closed_places"):
        sql.send(f"CREATE TABLE {name} (the_geom geometry(Geometry,4326), name text)")
        sql.send(f"SELECT CDB_CartodbfyTable(current_schema, '{name}')")
        sql.send(f"INSERT INTO {name} (the_geom, name) VALUES ('SRID=4326;POINT(2 41)', '{name}-row')")
    _make_public(server, "open_places")
    return "open_places", "closed_places"


def test_no_auth_reads_a_public_table(server, public_and_private) -> None:  # type: ignore[no-untyped-def]
    public, _ = public_and_private
    anonymous = SQLClient(NoAuthClient(base_url=f"{server.url}/user/default/"))
    data = anonymous.send(f"select name from {public}")
    assert data["rows"] == [{"name": "open_places-row"}]
    data = anonymous.send(f"select name from {public}", do_post=False)
    assert data["rows"] == [{"name": "open_places-row"}]


def test_no_auth_cannot_read_a_private_table(server, public_and_private) -> None:  # type: ignore[no-untyped-def]
    _, private = public_and_private
    anonymous = SQLClient(NoAuthClient(base_url=f"{server.url}/user/default/"))
    for do_post in (True, False):
        with pytest.raises(CartoException) as exc:
            anonymous.send(f"select name from {private}", do_post=do_post)
        assert "closed_places-row" not in str(exc.value)


def test_no_auth_cannot_write_a_public_table(server, sql, public_and_private) -> None:  # type: ignore[no-untyped-def]
    public, _ = public_and_private
    anonymous = SQLClient(NoAuthClient(base_url=f"{server.url}/user/default/"))
    with pytest.raises(CartoException):
        anonymous.send(f"insert into {public} (name) values ('anonymous')")
    with pytest.raises(CartoException):
        anonymous.send(f"drop table {public}")
    assert sql.send(f"select count(*) as n from {public}")["rows"] == [{"n": 1}]


@pytest.mark.parametrize("do_post", [True, False], ids=["post", "get"])
def test_no_auth_sql_error(server, do_post) -> None:  # type: ignore[no-untyped-def]
    anonymous = SQLClient(NoAuthClient(base_url=f"{server.url}/user/default/"))
    with pytest.raises(CartoException):
        anonymous.send("select * from non_existing_dataset", do_post=do_post)


# --- BatchSQLClient ---------------------------------------------------------------------------


def test_batch_create_and_wait_single_query(batch, tornados) -> None:  # type: ignore[no-untyped-def]
    job = batch.create_and_wait_for_completion(f"select * from {tornados}")
    assert job["status"] == "done"
    assert job["user"] == "default"
    assert job["query"] == f"select * from {tornados}"
    assert job["job_id"]
    assert job["created_at"] and job["updated_at"]


def test_batch_create_and_wait_multi_query(batch, sql) -> None:  # type: ignore[no-untyped-def]
    sql.send("DROP TABLE IF EXISTS batch_target")
    sql.send("CREATE TABLE batch_target (n integer)")
    queries = [
        "INSERT INTO batch_target VALUES (1)",
        "INSERT INTO batch_target SELECT n + 1 FROM batch_target",
        "INSERT INTO batch_target SELECT max(n) + 1 FROM batch_target",
    ]
    job = batch.create_and_wait_for_completion(queries)
    assert job["status"] == "done"
    assert [q["query"] for q in job["query"]] == queries
    assert [q["status"] for q in job["query"]] == ["done", "done", "done"]
    rows = sql.send("select n from batch_target order by n")["rows"]
    assert [r["n"] for r in rows] == [1, 2, 3]  # in the given order


def test_batch_create_then_read(batch) -> None:  # type: ignore[no-untyped-def]
    created = batch.create("select 1")
    assert created["status"] in ("pending", "running", "done")
    read = batch.read(created["job_id"])
    assert read["job_id"] == created["job_id"]
    assert read["query"] == "select 1"
    assert _wait_job(batch, read)["status"] == "done"


def test_batch_create_then_cancel_as_in_the_sdk_suite(batch, tornados) -> None:  # type: ignore[no-untyped-def]
    job_id = batch.create(f"select * from {tornados}")["job_id"]
    assert batch.cancel(job_id) in ("cancelled", "done")


def test_batch_cancel_of_a_done_job_returns_done(batch) -> None:  # type: ignore[no-untyped-def]
    job = batch.create_and_wait_for_completion("select 1")
    assert job["status"] == "done"
    # the server answers 400 'Cannot set status from done to cancelled'; the SDK turns it into 'done'
    assert batch.cancel(job["job_id"]) == "done"
    assert batch.read(job["job_id"])["status"] == "done"


def test_batch_failed_job(batch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CartoException) as exc:
        batch.create_and_wait_for_completion("select * from no_such_batch_table")
    assert "failed" in str(exc.value)
    job = _wait_job(batch, batch.create(["select 1", "select * from no_such_batch_table", "select 2"]))
    assert job["status"] == "failed"
    assert "does not exist" in job["failed_reason"]
    statuses = [q["status"] for q in job["query"]]
    assert statuses[0] == "done" and statuses[1] == "failed"
    assert "does not exist" in job["query"][1]["failed_reason"]


def test_batch_unknown_job(batch) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CartoException) as exc:
        batch.read("00000000-0000-0000-0000-000000000000")
    assert "not found" in str(exc.value)


def test_batch_needs_the_master_key(server) -> None:  # type: ignore[no-untyped-def]
    reader = server.token_for(bucket_permissions={"in.c-public": "read"})
    with pytest.raises(CartoException):
        BatchSQLClient(_auth(server, reader)).create("select 1")


@pytest.fixture(scope="module")
def idle_batch(tmp_path_factory) -> Iterator[BatchSQLClient]:  # type: ignore[no-untyped-def]
    """A server without job workers: its batch jobs stay pending until cancelled."""
    idle = start_server(tmp_path_factory.mktemp("idle"), workers=0)
    yield BatchSQLClient(_auth(idle))
    idle.stop()


def test_batch_update_and_cancel_a_pending_job(idle_batch) -> None:  # type: ignore[no-untyped-def]
    job = idle_batch.create("select 1")
    assert job["status"] == "pending"
    updated = idle_batch.update(job["job_id"], "select 2")
    assert updated["status"] == "pending"
    assert updated["query"] == "select 2"
    assert idle_batch.read(job["job_id"])["query"] == "select 2"
    assert idle_batch.cancel(job["job_id"]) == "cancelled"
    assert idle_batch.read(job["job_id"])["status"] == "cancelled"
    with pytest.raises(CartoException) as exc:
        idle_batch.update(job["job_id"], "select 3")
    assert "Job is not pending, it cannot be updated" in str(exc.value)
    with pytest.raises(CartoException) as exc:
        idle_batch.cancel(job["job_id"])
    assert "Cannot set status from cancelled to cancelled" in str(exc.value)


def test_batch_pending_multi_query_job(idle_batch) -> None:  # type: ignore[no-untyped-def]
    job = idle_batch.create(["select 1", "select 2"])
    assert job["status"] == "pending"
    assert job["query"] == [
        {"query": "select 1", "status": "pending"},
        {"query": "select 2", "status": "pending"},
    ]
    assert idle_batch.cancel(job["job_id"]) == "cancelled"


# --- CopySQLClient: the SDK suite -------------------------------------------------------------


def test_copyfrom(copy_client, copy_table) -> None:  # type: ignore[no-untyped-def]
    result = copy_client.copyfrom(COPY_FROM_QUERY, iter(TABLE_CONTENTS))
    assert result["total_rows"] == 3
    assert isinstance(result["time"], float)


def test_copyfrom_no_compression(copy_client, copy_table) -> None:  # type: ignore[no-untyped-def]
    result = copy_client.copyfrom(COPY_FROM_QUERY, iter(TABLE_CONTENTS), compress=False)
    assert result["total_rows"] == 3


def test_copyfrom_wrong_query(copy_client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CartoException) as exc:
        copy_client.copyfrom("COPY any_wrong_table (any_wrong_column) FROM stdin", iter(TABLE_CONTENTS))
    assert 'relation "any_wrong_table" does not exist' in str(exc.value)


def test_copyfrom_wrong_query_no_compression(copy_client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CartoException) as exc:
        copy_client.copyfrom(
            "COPY any_wrong_table (any_wrong_column) FROM stdin", iter(TABLE_CONTENTS), compress=False
        )
    assert 'relation "any_wrong_table" does not exist' in str(exc.value)


def _random_rows(n: int) -> io.BytesIO:
    rng = random.Random(6)
    out = io.BytesIO()
    for _ in range(n):
        row = "SRID=4326;POINT({lon} {lat}),{name},{age}\n".format(
            lon=rng.uniform(-170.0, 170.0),
            lat=rng.uniform(-80.0, 80.0),
            name=rng.choice(["fulano", "mengano", "zutano", "perengano"]),
            age=rng.randint(18, 99),
        )
        out.write(row.encode())
    out.seek(0)
    return out


def test_copyfrom_file_object(copy_client, copy_table) -> None:  # type: ignore[no-untyped-def]
    query = f"COPY {COPY_TABLE} (the_geom, name, age) FROM stdin WITH (FORMAT csv, HEADER false)"
    result = copy_client.copyfrom_file_object(query, _random_rows(1000))
    assert result["total_rows"] == 1000


def test_copyfrom_file_path(copy_client, copy_table) -> None:  # type: ignore[no-untyped-def]
    # header + 3 rows, the last one without a newline
    result = copy_client.copyfrom_file_path(COPY_FROM_QUERY, str(FIXTURES / "copy_from.csv"))
    assert result["total_rows"] == 3
    result = copy_client.copyfrom_file_path(COPY_FROM_QUERY, str(FIXTURES / "copy_from.csv"), compress=False)
    assert result["total_rows"] == 3


def test_copyto(copy_client) -> None:  # type: ignore[no-untyped-def]
    response = copy_client.copyto(COPYTO_QUERY)
    assert response.headers["Content-Type"].startswith("application/octet-stream")
    assert response.headers["Content-Disposition"].startswith("attachment")
    result = bytearray()
    for block in response.iter_content(10):
        result += block
    assert bytes(result) == COPYTO_EXPECTED


def test_copyto_long_query_by_post(copy_client) -> None:  # type: ignore[no-untyped-def]
    padded = COPYTO_QUERY.replace("FROM generate_series", " " * 1100 + "FROM generate_series")
    assert len(padded) >= 1024  # the SDK switches to POST with the same query-string params
    assert copy_client.copyto_stream(padded).read() == COPYTO_EXPECTED


def test_copyto_file_object(copy_client) -> None:  # type: ignore[no-untyped-def]
    target = io.BytesIO()
    copy_client.copyto_file_object(COPYTO_QUERY, target)
    assert target.getvalue() == COPYTO_EXPECTED


def test_copyto_file_path(copy_client, tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "carto-python-sdk-copy-test.dump"
    copy_client.copyto_file_path(COPYTO_QUERY, str(target))
    assert target.read_bytes() == COPYTO_EXPECTED
    copy_client.copyto_file_path(COPYTO_QUERY, str(target), append=True)
    assert target.read_bytes() == COPYTO_EXPECTED * 2


def test_copyto_stream(copy_client) -> None:  # type: ignore[no-untyped-def]
    assert copy_client.copyto_stream(COPYTO_QUERY).read() == COPYTO_EXPECTED


def test_copyto_error_is_a_client_error(copy_client) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(CartoException) as exc:
        copy_client.copyto("COPY (select * from no_such_copy_table) TO STDOUT")
    # the SDK builds "<status> Client Error: <error[0]>" from a JSON {"error": [...]} body
    assert "400 Client Error" in str(exc.value)
    assert "does not exist" in str(exc.value)


# --- geometry round trip and cartodb_id -------------------------------------------------------


def test_ewkt_round_trip(sql, copy_client) -> None:  # type: ignore[no-untyped-def]
    table = _fresh_cartodbfied(sql, "ewkt_round_trip")
    query = f"COPY {table} (the_geom, name, age) FROM stdin WITH (FORMAT csv, HEADER true)"
    assert copy_client.copyfrom(query, iter(TABLE_CONTENTS))["total_rows"] == 3
    data = sql.send(
        f"select cartodb_id, ST_AsEWKT(the_geom) as ewkt, ST_X(the_geom) as x, ST_Y(the_geom) as y, "
        f"the_geom, the_geom_webmercator, name, age from {table} order by cartodb_id"
    )
    rows = data["rows"]
    assert [r["cartodb_id"] for r in rows] == [1, 2, 3]
    assert [r["ewkt"] for r in rows] == [
        "SRID=4326;POINT(-126 54)",
        "SRID=4326;POINT(-96 34)",
        "SRID=4326;POINT(-6 -25)",
    ]
    assert [(r["x"], r["y"]) for r in rows] == [(-126, 54), (-96, 34), (-6, -25)]
    assert all(r["the_geom"].upper().startswith(EWKB_4326) for r in rows)
    assert all(r["the_geom_webmercator"].upper().startswith(EWKB_3857) for r in rows)
    assert [(r["name"], r["age"]) for r in rows] == [
        ("North West", 89),
        ("South East", 99),
        ("Souther Easter", 124),
    ]
    assert data["fields"]["the_geom"]["srid"] == 4326
    assert data["fields"]["the_geom_webmercator"]["srid"] == 3857
    # the hex EWKB reads back as the same geometry
    again = sql.send(f"select ST_AsEWKT('{rows[0]['the_geom']}'::geometry) as ewkt")
    assert again["rows"] == [{"ewkt": "SRID=4326;POINT(-126 54)"}]


def test_cartodb_id_unique_after_cartodbfy_and_copy(sql, copy_client) -> None:  # type: ignore[no-untyped-def]
    table = _fresh_cartodbfied(sql, "many_points")
    query = f"COPY {table} (the_geom, name, age) FROM stdin WITH (FORMAT csv, HEADER false)"
    assert copy_client.copyfrom_file_object(query, _random_rows(1000))["total_rows"] == 1000
    assert copy_client.copyfrom_file_object(query, _random_rows(500), compress=False)["total_rows"] == 500
    data = sql.send(
        "select count(*) as n, count(distinct cartodb_id) as ids, min(cartodb_id) as lo, "
        f"max(cartodb_id) as hi, count(the_geom_webmercator) as merc from {table}"
    )
    assert data["rows"] == [{"n": 1500, "ids": 1500, "lo": 1, "hi": 1500, "merc": 1500}]
    columns = sql.send(f"select * from {table} limit 1")["fields"]
    assert {"cartodb_id", "the_geom", "the_geom_webmercator", "name", "age"} <= set(columns)


# --- the README (seed 003) ----------------------------------------------------------------


def test_readme_copy_example(auth, tmp_path) -> None:  # type: ignore[no-untyped-def]
    sql_client = SQLClient(auth)
    copy_client = CopySQLClient(auth)

    sql_client.send("""
        CREATE TABLE IF NOT EXISTS copy_example (
          the_geom geometry(Geometry,4326),
          name text,
          age integer
        )
        """)
    sql_client.send("SELECT CDB_CartodbfyTable(current_schema, 'copy_example')")

    from_query = "COPY copy_example (the_geom, name, age) FROM stdin WITH (FORMAT csv, HEADER true)"
    result = copy_client.copyfrom_file_path(from_query, str(FIXTURES / "copy_from.csv"))
    assert result["total_rows"] == 3

    to_query = "COPY copy_example TO stdout WITH (FORMAT csv, HEADER true)"
    export = tmp_path / "export.csv"
    copy_client.copyto_file_path(to_query, str(export))
    exported = list(csv.DictReader(io.StringIO(export.read_text())))
    assert {"cartodb_id", "the_geom", "the_geom_webmercator", "name", "age"} <= set(exported[0])
    assert sorted(r["name"] for r in exported) == ["North West", "South East", "Souther Easter"]
    assert all(r["the_geom"].upper().startswith(EWKB_4326) for r in exported)

    with open(FIXTURES / "copy_from.csv", "rb") as f:
        assert copy_client.copyfrom_file_object(from_query, f)["total_rows"] == 3

    def rows() -> Iterator[bytearray]:
        yield bytearray("the_geom,name,age\n", "utf-8")
        for i in range(1, 80):
            row = f"SRID=4326;POINT({i} {i}),fulano,{100 - i}\n"
            yield bytearray(row, "utf-8")

    assert copy_client.copyfrom(from_query, rows())["total_rows"] == 79

    copy_client.copyto_file_path(to_query, str(export))
    exported = list(csv.DictReader(io.StringIO(export.read_text())))
    assert len(exported) == 3 + 3 + 79
    assert sorted(int(r["cartodb_id"]) for r in exported) == list(range(1, 86))
    assert sum(1 for r in exported if r["name"] == "fulano") == 79
    count = sql_client.send("select count(*) as n from copy_example")
    assert count["rows"] == [{"n": 85}]


# --- the prefix-less API: project from the token or from the Host header ---------------------


def test_prefixless_route_takes_the_project_from_the_token(server, tornados) -> None:  # type: ignore[no-untyped-def]
    r = requests.get(
        f"{server.url}/api/v2/sql",
        params={"q": f"select name from {tornados} order by name", "api_key": server.token},
    )
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [{"name": "moore"}, {"name": "tulsa"}]
    r = requests.get(f"{server.url}/api/v2/sql?q=select+1+as+one&api_key={server.token}")
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [{"one": 1}]


def test_prefixless_route_takes_the_project_from_the_host(server, tornados) -> None:  # type: ignore[no-untyped-def]
    port = server.url.rsplit(":", 1)[1]
    q = {"q": f"select name from {tornados} order by name"}
    r = requests.get(
        f"{server.url}/api/v2/sql",
        params={**q, "api_key": server.token},
        headers={"Host": f"default.localhost:{port}"},
    )
    assert r.status_code == 200, r.text
    assert r.json()["rows"] == [{"name": "moore"}, {"name": "tulsa"}]
    # the Host names the project: a token of another project is refused there
    other = create_project(server.services.catalog, "carto-host-other")
    r = requests.get(
        f"{server.url}/api/v2/sql",
        params={**q, "api_key": other.master.token},
        headers={"Host": f"default.localhost:{port}"},
    )
    assert r.status_code == 403, r.text
    assert "permission denied" in r.json()["error"][0]
    assert "moore" not in r.text
    # and the same token without that Host works in its own (empty) project
    r = requests.get(f"{server.url}/api/v2/sql", params={**q, "api_key": other.master.token})
    assert r.status_code == 400, r.text
    assert "does not exist" in r.json()["error"][0]
    # a Host that names no project falls back to the token's project
    r = requests.get(
        f"{server.url}/api/v2/sql",
        params={**q, "api_key": server.token},
        headers={"Host": f"nosuchproject.localhost:{port}"},
    )
    assert r.status_code == 200, r.text
    # anonymous by Host: only public tables
    r = requests.get(f"{server.url}/api/v2/sql", params=q, headers={"Host": f"default.localhost:{port}"})
    assert r.status_code in (401, 403), r.text
    assert "moore" not in r.text


def test_prefixless_copy_and_batch_routes(server) -> None:  # type: ignore[no-untyped-def]
    r = requests.get(f"{server.url}/api/v2/sql/copyto", params={"q": COPYTO_QUERY, "api_key": server.token})
    assert r.status_code == 200, r.text
    assert r.content == COPYTO_EXPECTED
    r = requests.post(f"{server.url}/api/v2/sql/job", json={"query": "select 1", "api_key": server.token})
    assert r.status_code == 201, r.text
    assert r.json()["user"] == "default"
