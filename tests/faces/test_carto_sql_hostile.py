"""Hostile SQL against the CARTO SQL API: every case gets a clear 4xx and changes or leaks nothing.

Files (read_csv, read_text, glob, COPY to/from paths, EXPORT DATABASE, ATTACH of a path), the
engine (INSTALL/LOAD, SET/PRAGMA, settings and environment functions, DuckDB catalogs), resources
(a never-ending recursive CTE, a cross join or aggregate that would exhaust memory), permissions
(read-only tokens, anonymous callers), other projects' tables by every naming form, and a
multi-statement request whose hostile second statement must roll back the first.

After each case: the canary table is unchanged, no file appeared at the target path, and the
response holds no secret (the token, the data directory, the installation secret, file contents).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from entrepot.core.projects import NewProject, create_project
from support.server import RunningServer, start_server

_names = itertools.count(1)
CANARY_ROWS = [{"n": 1}, {"n": 2}, {"n": 3}]
OTHER = "otherproj"  # a second project of the same server
OTHER_SECRET = "top-secret-of-otherproj"


def _url(server: RunningServer, project: str = "default", suffix: str = "") -> str:
    return f"{server.url}/user/{project}/api/v2/sql{suffix}"


def _post(server: RunningServer, q: str, token: str | None = "master", **extra: Any) -> requests.Response:
    data: dict[str, Any] = {"q": q, **extra}
    if token == "master":
        token = server.token
    if token is not None:
        data["api_key"] = token
    return requests.post(_url(server), data=data, timeout=120)


def _sql(server: RunningServer, q: str, token: str | None = None) -> dict[str, Any]:
    r = _post(server, q, token=token or server.token)
    assert r.status_code == 200, (q, r.status_code, r.text)
    return r.json()


def _canary(server: RunningServer) -> list[dict[str, Any]]:
    return _sql(server, "select n from canary order by n")["rows"]


def _secrets(server: RunningServer) -> list[str]:
    data_dir = server.settings.data_dir
    found = [server.token, str(data_dir), "root:x:0:0", "Traceback", OTHER_SECRET]
    key = data_dir / "secret.key"
    if key.is_file():
        found.append(key.read_text().strip())
    return [s for s in found if s]


def _refused(
    server: RunningServer,
    response: requests.Response,
    statuses: tuple[int, ...] = (400,),
    fragments: tuple[str, ...] = (),
    sent: str = "",
) -> str:
    """Assert a clear JSON 4xx that leaks nothing (beyond what ``sent`` held); return its message."""
    assert response.status_code in statuses, (response.status_code, response.text[:1000])
    body = response.json()
    assert isinstance(body, dict) and isinstance(body.get("error"), list) and body["error"], body
    message = " ".join(str(m) for m in body["error"])
    assert message.strip(), body
    for secret in _secrets(server):
        if secret in sent:
            continue
        assert secret not in response.text, f"response leaks {secret!r}: {response.text[:1000]}"
    lowered = message.lower()
    if fragments:
        assert any(f.lower() in lowered for f in fragments), (fragments, message)
    return message


@pytest.fixture(scope="module")
def canary(server) -> str:  # type: ignore[no-untyped-def]
    _sql(server, "create table canary (n integer)")
    _sql(server, "insert into canary values (1), (2), (3)")
    assert _canary(server) == CANARY_ROWS
    return "canary"


@pytest.fixture(autouse=True)
def _canary_unchanged(request) -> Iterator[None]:  # type: ignore[no-untyped-def]
    """Every test that uses the canary must leave it as it was."""
    yield
    if "canary" in request.fixturenames:
        server = request.getfixturevalue("server")
        assert _canary(server) == CANARY_ROWS
        assert _sql(server, "select 1 as one")["rows"] == [{"one": 1}]  # still serving


@pytest.fixture(scope="module")
def other(server) -> NewProject:  # type: ignore[no-untyped-def]
    """Project B with a table holding a secret, created through B's own SQL API."""
    project = create_project(server.services.catalog, OTHER)
    r = requests.post(
        _url(server, OTHER),
        data={"q": f"create table secret_b (v text); insert into secret_b values ('{OTHER_SECRET}')",
              "api_key": project.master.token},
    )  # fmt: skip
    assert r.status_code == 200, r.text
    r = requests.post(
        _url(server, OTHER),
        data={"q": 'create table "in.c-public".secret_c (v text)', "api_key": project.master.token},
    )
    assert r.status_code == 200, r.text
    r = requests.post(
        _url(server, OTHER),
        data={"q": "select v from secret_b", "api_key": project.master.token},
    )
    assert r.json()["rows"] == [{"v": OTHER_SECRET}]
    return project


# --- files ---------------------------------------------------------------------------------------

FILE_READS = [
    "select * from read_csv('/etc/passwd')",
    "select * from read_csv_auto('/etc/passwd')",
    "select * from READ_CSV('/etc/passwd')",
    "select * from \"read_csv\"('/etc/passwd')",
    "select * from read_text('/etc/passwd')",
    "select * from read_blob('/etc/passwd')",
    "select * from read_json_auto('/etc/passwd')",
    "select * from read_parquet('/etc/passwd')",
    "select * from glob('/etc/*')",
    "select * from sniff_csv('/etc/passwd')",
    "select * from '/etc/passwd'",
    "select * from 'data.parquet'",
    "select * from ST_Read('/etc/passwd')",
    "with x as (select * from read_csv('/etc/passwd')) select * from x",
    "select n from canary where n in (select 1 from read_csv('/etc/passwd'))",
    "select (select count(*) from read_text('/etc/passwd')) as c",
    "insert into canary select 1 from read_csv('/etc/passwd')",
    "create table stolen as select * from read_csv('/etc/passwd')",
    "select * from canary, read_csv('/etc/passwd')",
]


@pytest.mark.parametrize("q", FILE_READS)
def test_file_reads_are_refused(server, canary, q) -> None:  # type: ignore[no-untyped-def]
    _refused(
        server, _post(server, q), fragments=("not allowed", "refused", "not supported", "function", "read")
    )
    r = _post(server, "select * from stolen")
    assert r.status_code == 400  # never created


def test_reading_the_lake_files_directly_is_refused(server, canary, other) -> None:  # type: ignore[no-untyped-def]
    lakes = server.settings.data_dir / "lakes"
    queries = [f"select * from sqlite_scan('{lakes}/{OTHER}/catalog.sqlite', 'ducklake_table')"]
    for pattern in (f"{lakes}/default/**/*.parquet", f"{lakes}/{OTHER}/**/*.parquet", f"{lakes}/**/*"):
        queries += [f"select * from read_parquet('{pattern}')", f"select * from glob('{pattern}')"]
    for q in queries:
        r = _post(server, q)
        _refused(server, r, sent=q)
        assert OTHER_SECRET not in r.text


def test_copy_to_a_file_is_refused(server, canary, tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "x.csv"
    for q in (
        f"COPY canary TO '{target}'",
        f"COPY canary TO '{target}' (FORMAT csv)",
        f"COPY (select * from canary) TO '{target}' WITH (FORMAT csv, HEADER true)",
        f"copy canary to '{target}' (format parquet)",
    ):
        _refused(server, _post(server, q), fragments=("COPY", "STDOUT"))
        assert not target.exists()
    # through the copyto endpoint too
    r = requests.get(
        _url(server, suffix="/copyto"), params={"q": f"COPY canary TO '{target}'", "api_key": server.token}
    )
    _refused(server, r, fragments=("COPY", "STDOUT"))
    assert not target.exists()


def test_copy_from_a_file_is_refused(server, canary) -> None:  # type: ignore[no-untyped-def]
    for q in ("COPY canary FROM '/etc/passwd'", "COPY canary FROM '/etc/passwd' (FORMAT csv)"):
        _refused(server, _post(server, q), fragments=("COPY", "STDIN"))
    r = requests.post(
        _url(server, suffix="/copyfrom"),
        params={"q": "COPY canary FROM '/etc/passwd'", "api_key": server.token},
        data=b"5\n",
    )
    _refused(server, r, fragments=("COPY", "STDIN"))


def test_export_database_is_refused(server, canary, tmp_path) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "exported"
    for q in (f"EXPORT DATABASE '{target}'", f"EXPORT DATABASE lake TO '{target}' (FORMAT parquet)"):
        _refused(server, _post(server, q), fragments=("EXPORT",))
        assert not target.exists()
    _refused(server, _post(server, f"IMPORT DATABASE '{tmp_path}'"), fragments=("IMPORT",))


# --- the engine ----------------------------------------------------------------------------------

ENGINE_STATEMENTS = [
    ("ATTACH ':memory:' AS x", "ATTACH"),
    ("ATTACH '{tmp}/new.db' AS x", "ATTACH"),
    ("ATTACH '{tmp}/new.db'", "ATTACH"),
    ("ATTACH 'ducklake:sqlite:{lakes}/otherproj/catalog.sqlite' AS b", "ATTACH"),
    ("DETACH lake", "DETACH"),
    ("INSTALL httpfs", "INSTALL"),
    ("LOAD httpfs", "LOAD"),
    ("LOAD '{tmp}/evil.duckdb_extension'", "LOAD"),
    ("FORCE INSTALL spatial", "INSTALL"),
    ("SET memory_limit = '100GB'", "SET"),
    ("SET enable_external_access = true", "SET"),
    ("SET lock_configuration = false", "SET"),
    ("SET GLOBAL threads = 64", "SET"),
    ("RESET memory_limit", "RESET"),
    ("PRAGMA database_list", "PRAGMA"),
    ("PRAGMA enable_profiling", "PRAGMA"),
    ("CALL pragma_database_list()", "CALL"),
    ("USE memory", "USE"),
    ("CHECKPOINT", "CHECKPOINT"),
    ("VACUUM", "VACUUM"),
    ("BEGIN TRANSACTION", "BEGIN"),
    ("CREATE MACRO evil(x) AS x", "MACRO"),
    ("CREATE FUNCTION evil(x) AS x", "FUNCTION"),
    ("CREATE SECRET s (TYPE s3, KEY_ID 'a', SECRET 'b')", "SECRET"),
    ("CREATE VIEW v AS select * from canary", "VIEW"),
    ("CREATE SEQUENCE s", "SEQUENCE"),
    ("CREATE SCHEMA s", "SCHEMA"),
    ("CREATE INDEX i ON canary (n)", "INDEX"),
    ("CREATE TEMP TABLE tt (n integer)", "TEMP"),
    ("CREATE TEMPORARY TABLE tt AS select 1", "TEMP"),
]


@pytest.mark.parametrize(("q", "fragment"), ENGINE_STATEMENTS, ids=[s for s, _ in ENGINE_STATEMENTS])
def test_engine_statements_are_refused(server, canary, tmp_path, q, fragment) -> None:  # type: ignore[no-untyped-def]
    q = q.format(tmp=tmp_path, lakes=server.settings.data_dir / "lakes")
    _refused(server, _post(server, q), fragments=(fragment,), sent=q)
    assert list(tmp_path.iterdir()) == []


ENGINE_FUNCTIONS = [
    "select getenv('HOME')",
    "select getenv('ENTREPOT_SECRET_KEY')",
    "select current_setting('allowed_directories')",
    "select current_setting('temp_directory')",
    "select current_setting('enable_external_access')",
    "select getvariable('x')",
    "select * from duckdb_settings()",
    "select * from duckdb_databases()",
    "select * from duckdb_tables()",
    "select * from duckdb_extensions()",
    "select * from duckdb_secrets()",
    "select * from pragma_database_list()",
    "select * from pragma_table_info('canary')",
    "select * from query('select 1')",
    "select * from query_table('canary')",
    "select * from ducklake_snapshots('lake')",
    "select * from sqlite_master",
    "select * from pg_catalog.pg_tables",
    "select * from __ducklake_metadata_lake.ducklake_table",
    "select * from memory.main.pg_webmercator",
    "select * from system.main.duckdb_settings()",
    "select version() as v from read_csv('/etc/passwd')",
    "select * from ST_Drivers()",
    "select * from range(3) r, glob('/*')",
    "select * from iceberg_scan('/tmp')",
    "select * from delta_scan('/tmp')",
]


@pytest.mark.parametrize("q", ENGINE_FUNCTIONS)
def test_engine_functions_are_refused(server, canary, q) -> None:  # type: ignore[no-untyped-def]
    r = _post(server, q)
    fragments = ("not allowed", "refused", "not supported", "function", "unknown", "schema", "does not exist")
    _refused(server, r, fragments=fragments)
    assert "memory_limit" not in r.text and "enable_external_access" not in r.text.replace(q, "")


def test_information_schema_shows_only_this_project(server, canary, other) -> None:  # type: ignore[no-untyped-def]
    body = _sql(server, "select table_schema, table_name from information_schema.tables")
    names = {r["table_name"] for r in body["rows"]}
    assert "canary" in names
    assert "secret_b" not in names and "secret_c" not in names
    assert not any(r["table_schema"].startswith("__ducklake") for r in body["rows"])
    body = _sql(server, "select table_name, column_name from information_schema.columns")
    assert {r["table_name"] for r in body["rows"]} & {"secret_b", "secret_c"} == set()
    _refused(server, _post(server, "insert into information_schema.tables values (1)"), (400, 403))


# --- resources -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def limited(tmp_path_factory) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    """A server with a 1 s statement limit and a small SQL memory limit."""
    running = start_server(tmp_path_factory.mktemp("limited"), sql_time_limit=1.0, sql_memory_limit="256MB")
    r = requests.post(_url(running), data={"q": "create table canary (n integer)", "api_key": running.token})
    assert r.status_code == 200, r.text
    r = requests.post(
        _url(running), data={"q": "insert into canary values (1), (2), (3)", "api_key": running.token}
    )
    assert r.status_code == 200, r.text
    yield running
    running.stop()


RUNAWAY = [
    ("with recursive t(n) as (select 1 union all select n + 1 from t) select count(*) from t", (429,)),
    ("with recursive t(n) as (select 1 union all select n from t) select max(n) from t", (429,)),
    ("select count(*) from range(100000000) a, range(100000000) b", (429,)),
    (
        "select a, b from generate_series(1, 100000000) a, generate_series(1, 100000000) b order by a, b",
        (400, 429),
    ),
    ("select length(string_agg(repeat('x', 1000), '')) from range(100000000)", (400, 429)),
    ("select list(repeat('x', 10000)) from range(10000000)", (400, 429)),
    (
        "select count(distinct a * 100000000 + b) from generate_series(1, 100000) a, generate_series(1, 100000) b",
        (400, 429),
    ),
]


@pytest.mark.parametrize(("q", "statuses"), RUNAWAY, ids=[f"runaway{i}" for i in range(len(RUNAWAY))])
def test_runaway_queries_stop_with_a_4xx(limited, q, statuses) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    r = _post(limited, q)
    elapsed = time.monotonic() - started
    message = _refused(limited, r, statuses)
    if r.status_code == 429:
        assert "Retry-After" not in r.headers
        assert any(w in message.lower() for w in ("timeout", "time limit", "limit", "took too long")), message
    else:
        assert "memory" in message.lower(), message
    assert elapsed < 20, elapsed
    r = _post(limited, "select n from canary order by n")
    assert r.status_code == 200 and r.json()["rows"] == CANARY_ROWS


def test_runaway_copy_to_stops(limited) -> None:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    r = requests.get(
        _url(limited, suffix="/copyto"),
        params={
            "q": "COPY (with recursive t(n) as (select 1 union all select n + 1 from t) "
            "select count(*) from t) TO STDOUT",
            "api_key": limited.token,
        },
        timeout=60,
    )
    assert time.monotonic() - started < 20
    _refused(limited, r, (429,))


def test_runaway_batch_query_fails_the_job(tmp_path) -> None:  # type: ignore[no-untyped-def]
    running = start_server(tmp_path / "data", sql_batch_time_limit=1.0)
    try:
        r = requests.post(
            _url(running, suffix="/job"),
            json={
                "query": "with recursive t(n) as (select 1 union all select n + 1 from t) select count(*) from t",
                "api_key": running.token,
            },
        )
        assert r.status_code == 201, r.text
        job = r.json()
        deadline = time.monotonic() + 30
        while job["status"] in ("pending", "running"):
            assert time.monotonic() < deadline, job
            time.sleep(0.2)
            job = requests.get(
                _url(running, suffix=f"/job/{job['job_id']}"), params={"api_key": running.token}
            ).json()
        assert job["status"] == "failed", job
        assert job.get("failed_reason")
    finally:
        running.stop()


# --- permissions ---------------------------------------------------------------------------------

WRITES = [
    "insert into canary values (5)",
    "update canary set n = 0",
    "delete from canary",
    "truncate canary",
    "truncate table canary",
    "drop table canary",
    "alter table canary add column z integer",
    "alter table canary rename to canary2",
    "create table made_by_reader (n integer)",
    "create table made_by_reader as select 1 as n",
    "select CDB_CartodbfyTable(current_schema, 'canary')",
    "insert into canary values (5); select 1",
    "with x as (delete from canary returning n) select * from x",
]


@pytest.mark.parametrize("q", WRITES)
def test_read_only_token_cannot_write(server, canary, q) -> None:  # type: ignore[no-untyped-def]
    reader = server.token_for(bucket_permissions={"in.c-public": "read"})
    assert _sql(server, "select count(*) as n from canary", token=reader)["rows"] == [{"n": 3}]
    plain_write = q.startswith(("insert", "update", "delete", "drop", "truncate", "alter", "create"))
    statuses = (403,) if plain_write else (400, 403)
    _refused(
        server,
        _post(server, q, token=reader),
        statuses,
        ("permission denied", "not allowed", "not supported"),
    )
    r = _post(server, "select * from made_by_reader")
    assert r.status_code == 400


def test_read_only_token_cannot_copy_from(server, canary) -> None:  # type: ignore[no-untyped-def]
    reader = server.token_for(bucket_permissions={"in.c-public": "read"})
    r = requests.post(
        _url(server, suffix="/copyfrom"),
        params={"q": "COPY canary (n) FROM STDIN", "api_key": reader},
        data=b"5\n6\n",
    )
    _refused(server, r, (403,), ("permission denied",))


def test_read_only_token_cannot_run_batch_jobs(server, canary) -> None:  # type: ignore[no-untyped-def]
    reader = server.token_for(bucket_permissions={"in.c-public": "read"})
    r = requests.post(_url(server, suffix="/job"), json={"query": "delete from canary", "api_key": reader})
    _refused(server, r, (403,), ("permission denied",))


def test_token_without_the_bucket_cannot_read_it(server, canary) -> None:  # type: ignore[no-untyped-def]
    requests.post(f"{server.url}/v2/storage/buckets", headers=server.headers(), data={"name": "hidden"})
    _sql(server, 'create table "in.c-hidden".vault (v text)')
    _sql(server, "insert into \"in.c-hidden\".vault values ('vault-content')")
    reader = server.token_for(bucket_permissions={"in.c-public": "read"})
    for q in (
        'select * from "in.c-hidden".vault',
        'select n from canary union all select 1 from "in.c-hidden".vault',
    ):
        r = _post(server, q, token=reader)
        _refused(server, r, (400, 403), ("permission denied", "does not exist"))
        assert "vault-content" not in r.text


ANONYMOUS_WRITES = [
    "create table anon_made (n integer)",
    "drop table canary",
    "insert into canary values (5)",
    "delete from canary",
]


@pytest.mark.parametrize("token", [None, "default_public"], ids=["no-key", "default_public"])
@pytest.mark.parametrize("q", ANONYMOUS_WRITES)
def test_anonymous_cannot_write(server, canary, q, token) -> None:  # type: ignore[no-untyped-def]
    _refused(server, _post(server, q, token=token), (401, 403))
    assert _post(server, "select * from anon_made").status_code == 400


def test_anonymous_cannot_copy_or_batch(server, canary) -> None:  # type: ignore[no-untyped-def]
    r = requests.post(
        _url(server, suffix="/copyfrom"), params={"q": "COPY canary (n) FROM STDIN"}, data=b"5\n"
    )
    _refused(server, r, (401, 403))
    r = requests.post(_url(server, suffix="/job"), json={"query": "drop table canary"})
    _refused(server, r, (401, 403))
    r = requests.get(_url(server, suffix="/copyto"), params={"q": "COPY canary TO STDOUT"})
    _refused(server, r, (400, 401, 403))
    assert "\n2\n" not in r.text


# --- other projects --------------------------------------------------------------------------------

CROSS_PROJECT = [
    "select * from secret_b",
    f"select * from {OTHER}.secret_b",
    f'select * from "{OTHER}".secret_b',
    f'select * from "{OTHER}"."secret_b"',
    f'select * from {OTHER}."in.c-public".secret_b',
    f'select * from lake.{OTHER}."in.c-public".secret_b',
    'select * from lake."in.c-public".secret_b',
    f"select * from lake.{OTHER}.secret_b",
    'select * from "in.c-public".secret_b',
    'select * from "in.c-public".secret_c',
    "select * from public.secret_b",
    'select * from "default".secret_b',
    f"select * from {OTHER}_lake.secret_b",
    'select * from "in.c-public"."secret_b" union all select 1',
    f"select * from canary where n in (select 1 from {OTHER}.secret_b)",
    f"insert into canary select 1 from {OTHER}.secret_b",
    f"drop table {OTHER}.secret_b",
    f'drop table "{OTHER}"."in.c-public".secret_b',
    f"delete from {OTHER}.secret_b",
    f"COPY {OTHER}.secret_b TO STDOUT",
]


@pytest.mark.parametrize("q", CROSS_PROJECT)
def test_another_projects_tables_are_unreachable(server, canary, other, q) -> None:  # type: ignore[no-untyped-def]
    r = _post(server, q)
    fragments = ("does not exist", "unknown", "not allowed", "permission denied", "schema", "copy")
    _refused(server, r, (400, 403, 404), fragments)
    assert OTHER_SECRET not in r.text
    # B's data is intact
    r = requests.post(
        _url(server, OTHER), data={"q": "select v from secret_b", "api_key": other.master.token}
    )
    assert r.json()["rows"] == [{"v": OTHER_SECRET}]


def test_another_projects_path_with_this_token_is_403(server, canary, other) -> None:  # type: ignore[no-untyped-def]
    for method, suffix, kwargs in (
        ("POST", "", {"data": {"q": "select v from secret_b", "api_key": server.token}}),
        ("GET", "", {"params": {"q": "select v from secret_b", "api_key": server.token}}),
        ("GET", "/copyto", {"params": {"q": "COPY secret_b TO STDOUT", "api_key": server.token}}),
        ("POST", "/job", {"json": {"query": "drop table secret_b", "api_key": server.token}}),
        (
            "POST",
            "/copyfrom",
            {"params": {"q": "COPY secret_b FROM STDIN", "api_key": server.token}, "data": b"x\n"},
        ),
    ):
        r = requests.request(method, _url(server, OTHER, suffix), **kwargs)
        _refused(server, r, (403,), ("permission denied",))
        assert OTHER_SECRET not in r.text
    r = requests.post(
        _url(server, OTHER), data={"q": "select v from secret_b", "api_key": other.master.token}
    )
    assert r.json()["rows"] == [{"v": OTHER_SECRET}]


def test_another_projects_batch_jobs_are_invisible(server, canary, other) -> None:  # type: ignore[no-untyped-def]
    r = requests.post(_url(server, OTHER, "/job"), json={"query": "select 1", "api_key": other.master.token})
    assert r.status_code == 201, r.text
    job_id = r.json()["job_id"]
    r = requests.get(_url(server, suffix=f"/job/{job_id}"), params={"api_key": server.token})
    _refused(server, r, (400, 403, 404), ("not found", "permission denied"))
    r = requests.delete(_url(server, suffix=f"/job/{job_id}"), params={"api_key": server.token})
    _refused(server, r, (400, 403, 404), ("not found", "permission denied"))
    r = requests.put(
        _url(server, suffix=f"/job/{job_id}"), json={"query": "drop table secret_b", "api_key": server.token}
    )
    _refused(server, r, (400, 403, 404), ("not found", "permission denied"))


# --- multi-statement requests ----------------------------------------------------------------------

MULTI = [
    "insert into canary values (99); attach ':memory:' as x",
    "insert into canary values (99); select * from read_csv('/etc/passwd')",
    "insert into canary values (99); SET memory_limit = '100GB'",
    "insert into canary values (99); select * from no_such_table_anywhere",
    "insert into canary values (99); select 1/0::integer as boom, * from canary where n = 'x'",
    "insert into canary values (99); insert into canary values ('not a number')",
    "insert into canary values (99); drop table canary; create table canary (n integer); select 1 from x y z",
    "delete from canary; select * from otherproj.secret_b",
    "update canary set n = 99; COPY canary TO '/tmp/entrepot-hostile.csv'",
    "insert into canary values (99);; ; select getenv('HOME')",
]


@pytest.mark.parametrize("q", MULTI, ids=[f"multi{i}" for i in range(len(MULTI))])
def test_hostile_second_statement_rolls_back_the_first(server, canary, other, q) -> None:  # type: ignore[no-untyped-def]
    r = _post(server, q)
    _refused(server, r, (400, 403))
    assert _canary(server) == CANARY_ROWS  # no 99, nothing deleted or changed
    assert not Path("/tmp/entrepot-hostile.csv").exists()


def test_statement_smuggling_in_literals_and_comments(server, canary) -> None:  # type: ignore[no-untyped-def]
    # a semicolon inside a string or comment is not a statement boundary
    body = _sql(server, "select 'x; attach '':memory:'' as y' as s -- ; drop table canary")
    assert body["rows"] == [{"s": "x; attach ':memory:' as y"}]
    body = _sql(server, "select /* ; drop table canary; */ count(*) as n from canary")
    assert body["rows"] == [{"n": 3}]
    _refused(server, _post(server, "select 1; /* comment */ attach ':memory:' as y"), fragments=("ATTACH",))
    _refused(server, _post(server, "select $$x$$ as s; attach ':memory:' as y"))
