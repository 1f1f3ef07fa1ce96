"""Issue 13's SQL findings, each reproduction a permanent test against a real server.

1. SQL reaching DuckDB's system views (the recursive-CTE forward reference, and every other
   shape of query that names a system object: CTEs, subqueries, lateral joins, table
   functions, FROM shorthand, PIVOT, macros, prepared statements, SUMMARIZE, DESCRIBE, SHOW),
   for anonymous, read-only and master keys, on the sync, batch and COPY paths: refused with a
   4xx that leaks no path, DSN or setting, the canary table unchanged.
2. information_schema shows a caller only the tables it may read.
3. A server restarted on an existing data dir answers an anonymous first SQL request (it used
   to deadlock on its own lock).
5. Values, plans and concurrency of user SQL are bounded: ``repeat``/``lpad`` of gigabytes and a
   20,000-branch UNION ALL are refused before they cost memory (the server's peak RSS is
   measured), and a project's queries beyond its slots get CARTO's 429.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from support.server import Process, RunningServer, cli_env, free_port, printed_token, start_server

CANARY = [{"n": 1}, {"n": 2}, {"n": 3}]


def _url(server: RunningServer | str, suffix: str = "", project: str = "default") -> str:
    base = server if isinstance(server, str) else server.url
    return f"{base}/user/{project}/api/v2/sql{suffix}"


def _sql(server: RunningServer, q: str, token: str | None = None) -> dict[str, Any]:
    r = requests.post(_url(server), data={"q": q, "api_key": token or server.token}, timeout=60)
    assert r.status_code == 200, (q, r.status_code, r.text)
    return r.json()


@pytest.fixture(scope="module")
def keys(server: RunningServer) -> dict[str, str | None]:
    """The canary (public, so anonymous callers reach the SQL path) and the three kinds of key."""
    _sql(server, "create table canary (n integer); insert into canary values (1), (2), (3)")
    r = requests.put(
        _url(server, "/tables/canary/privacy"),
        params={"privacy": "public", "api_key": server.token},
        timeout=30,
    )
    assert r.status_code == 200, r.text
    reader = server.token_for(description="reader", bucket_permissions={"in.c-public": "read"})
    return {"anonymous": None, "read-only": reader, "master": server.token}


def _leaks(server: RunningServer) -> list[str]:
    data_dir = str(server.settings.data_dir)
    return [
        data_dir,
        "catalog.sqlite",
        "ducklake:",
        "allowed_directories",
        "secret_directory",
        server.token,
        "Traceback",
    ]


def _assert_refused(server: RunningServer, r: requests.Response, q: str) -> str:
    assert 400 <= r.status_code < 500, (q, r.status_code, r.text[:500])
    body = r.json()
    errors = body.get("error")
    assert isinstance(errors, list) and errors and str(errors[0]).strip(), body
    for secret in _leaks(server):
        assert secret not in r.text, f"{q!r} leaks {secret!r}: {r.text[:500]}"
    return " ".join(map(str, errors))


ESCAPES = [
    # the reproduction: a recursive CTE's forward reference bound to DuckDB's system view
    "with recursive a as (select database_name, path from duckdb_databases), "
    "duckdb_databases as (select 1 as x) select * from a",
    "with recursive a as (select name, value from pg_settings), pg_settings as (select 1 as x) select * from a",
    "with recursive a as (select * from duckdb_secrets), duckdb_secrets as (select 1) select * from a",
    "with a as (select * from duckdb_settings) select * from a",
    "with a as (select * from duckdb_databases()) select * from a",
    "select * from (select * from duckdb_databases) s",
    "select (select path from duckdb_databases limit 1)",
    "select * from canary where n in (select 1 from duckdb_settings())",
    "select * from canary, lateral (select value from duckdb_settings() limit 1) s",
    "select * from duckdb_databases()",
    "select * from pg_settings",
    "select * from pg_catalog.pg_settings",
    "from duckdb_databases()",
    "from pg_settings",
    "select * from (pivot (select name, value from duckdb_settings()) on name using first(value))",
    "pivot duckdb_settings on name using first(value)",
    "select * from query_table('duckdb_databases')",
    "select * from query('select * from duckdb_databases()')",
    "prepare p as select * from duckdb_databases()",
    "execute p",
    "summarize duckdb_databases",
    "select * from (summarize duckdb_settings())",
    "describe duckdb_databases",
    "select * from (describe select * from duckdb_databases())",
    "show databases",
    "select * from (show databases)",
    "select current_setting('allowed_directories')",
    "select * from information_schema.tables t join duckdb_databases d on true",
    'select * from "__ducklake_metadata_lake".main.ducklake_table',
    "select * from lake.main.duckdb_databases",
    "create table stolen as select * from duckdb_databases()",
]


@pytest.mark.parametrize("key", ["anonymous", "read-only", "master"])
@pytest.mark.parametrize("q", ESCAPES)
def test_system_objects_are_unreachable_by_any_shape(server, keys, key, q) -> None:  # type: ignore[no-untyped-def]
    token = keys[key]
    params = {"q": q, **({"api_key": token} if token else {})}
    _assert_refused(server, requests.get(_url(server), params=params, timeout=60), q)
    _assert_refused(server, requests.post(_url(server), data=params, timeout=60), q)
    copy = {"q": f"COPY ({q}) TO STDOUT", **({"api_key": token} if token else {})}
    _assert_refused(server, requests.get(_url(server, "/copyto"), params=copy, timeout=60), q)
    assert _sql(server, "select n from canary order by n")["rows"] == CANARY


@pytest.mark.parametrize("q", ESCAPES[:8])
def test_batch_jobs_cannot_reach_system_objects(server, keys, q) -> None:  # type: ignore[no-untyped-def]
    r = requests.post(_url(server, "/job"), json={"query": q, "api_key": server.token}, timeout=30)
    if r.status_code != 201:  # refused before it was queued
        _assert_refused(server, r, q)
        return
    job = r.json()
    deadline = time.monotonic() + 60
    while job["status"] in ("pending", "running"):
        assert time.monotonic() < deadline, job
        r = requests.get(
            _url(server, f"/job/{job['job_id']}"), params={"api_key": server.token, "wait": 5}, timeout=30
        )
        job = r.json()
    assert job["status"] == "failed", job
    for secret in _leaks(server):
        assert secret not in r.text, r.text


def test_the_lake_is_still_readable_through_its_own_names(server, keys) -> None:  # type: ignore[no-untyped-def]
    # the wall refuses system objects, not ordinary queries of the same shapes
    q = (
        "with recursive r(i) as (select 1 union all select i + 1 from r where i < 3), "
        "c as (select n from canary) select count(*) as k from r join c on r.i = c.n"
    )
    for token in (None, keys["read-only"], server.token):
        params = {"q": q, **({"api_key": token} if token else {})}
        r = requests.get(_url(server), params=params, timeout=30)
        assert r.status_code == 200, r.text
        assert r.json()["rows"] == [{"k": 3}]


# --- information_schema ----------------------------------------------------------------------


def test_information_schema_lists_only_what_the_caller_may_read(server, keys) -> None:  # type: ignore[no-untyped-def]
    _sql(server, "create table hidden_one (secret_col text)")
    r = requests.post(
        f"{server.url}/v2/storage/buckets", data={"name": "private", "stage": "in"}, headers=server.headers()
    )
    assert r.status_code == 201, r.text
    _sql(server, 'create table "in.c-private".other_hidden (x integer)')
    seen: dict[str | None, set[str]] = {}
    for key in ("anonymous", "read-only", "master"):
        token = keys[key]
        params = {"q": "select table_schema, table_name from information_schema.tables"}
        if token:
            params["api_key"] = token
        r = requests.get(_url(server), params=params, timeout=30)
        assert r.status_code == 200, r.text
        seen[key] = {row["table_name"] for row in r.json()["rows"]}
        q = "select table_name, column_name from information_schema.columns"
        r = requests.get(_url(server), params={**params, "q": q}, timeout=30)
        assert r.status_code == 200, r.text
        assert {row["table_name"] for row in r.json()["rows"]} <= seen[key]
    assert "canary" in seen["anonymous"] and "hidden_one" not in seen["anonymous"]
    assert {"canary", "hidden_one"} <= seen["read-only"] and "other_hidden" not in seen["read-only"]
    assert {"canary", "hidden_one", "other_hidden"} <= seen["master"]
    r = requests.get(_url(server), params={"q": "select schema_name from information_schema.schemata"})
    assert r.status_code == 200 and {row["schema_name"] for row in r.json()["rows"]} == {"in.c-public"}
    r = requests.get(
        _url(server),
        params={"q": "select count(*) as k from information_schema.columns where column_name = 'secret_col'"},
    )
    assert r.status_code == 200 and r.json()["rows"] == [{"k": 0}]


# --- the restart deadlock --------------------------------------------------------------------


def test_a_restarted_server_answers_an_anonymous_first_sql_request(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = cli_env(tmp_path / "data")
    first = Process(["serve", "--port", str(port)], env, tmp_path / "first.log")
    try:
        first.wait_http(url)
        token = printed_token(first.output())
        r = requests.post(_url(url), data={"q": "create table t (n integer)", "api_key": token}, timeout=60)
        assert r.status_code == 200, r.text
    finally:
        first.stop()
    second = Process(["serve", "--port", str(port)], env, tmp_path / "second.log")
    try:
        second.wait_http(url)
        r = requests.get(_url(url), params={"q": "select 1 as one"}, timeout=30)  # anonymous, first
        assert r.status_code == 200 and r.json()["rows"] == [{"one": 1}], r.text
        assert requests.get(f"{url}/ready", timeout=30).status_code == 200
        r = requests.get(_url(url), params={"q": "select count(*) as k from t", "api_key": token}, timeout=30)
        assert r.status_code == 200 and r.json()["rows"] == [{"k": 0}], r.text
    finally:
        code = second.stop(timeout=20)
    assert code is not None and "Traceback" not in second.output()


# --- memory, planning and concurrency --------------------------------------------------------


def _peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise AssertionError("no VmHWM")


@pytest.fixture(scope="module")
def process_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Process, str, str]]:
    """``entrepot serve`` in a process of its own, so its peak RSS is its own."""
    base = tmp_path_factory.mktemp("rss")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    proc = Process(["serve", "--port", str(port)], cli_env(base / "data"), base / "serve.log")
    try:
        proc.wait_http(url)
        token = printed_token(proc.output())
        r = requests.post(_url(url), data={"q": "select count(*) from range(1000)", "api_key": token})
        assert r.status_code == 200, r.text  # the sandbox is open: its memory is the baseline
        yield proc, url, token
    finally:
        proc.stop()


AMPLIFIERS = [
    ("select length(repeat('x', 2000000000)) as n", "sql_max_value_bytes"),
    ("select length(repeat('xyz', 700000000)) as n", "sql_max_value_bytes"),
    ("select length(lpad('x', 2000000000)) as n", "sql_max_value_bytes"),
    ("select length(rpad('x', 2000000000, 'ab')) as n", "sql_max_value_bytes"),
    ("select max(length(repeat('x', 1000000))) as n from range(100000)", "sql_max_value_bytes"),
    (" union all ".join(["select 1"] * 20_000), "sql_max_query_blocks"),
    ("select " + ", ".join(["(select 1)"] * 2_000), "sql_max_query_blocks"),
    ("select " + " + ".join(["1"] * 880) + " as n", "sql_max_expression_depth"),
    ("select " + " || ".join(["'a'"] * 2_000) + " as s", "sql_max_expression_depth"),
]


@pytest.mark.parametrize(("q", "setting"), AMPLIFIERS, ids=[f"amplifier{i}" for i in range(len(AMPLIFIERS))])
def test_values_and_plans_are_bounded_before_they_cost_memory(process_server, q, setting) -> None:  # type: ignore[no-untyped-def]
    proc, url, token = process_server
    before = _peak_rss_mb(proc.proc.pid)
    started = time.monotonic()
    r = requests.post(_url(url), data={"q": q, "api_key": token}, timeout=120)
    assert r.status_code == 400, (r.status_code, r.text[:300])
    assert setting in r.json()["error"][0], r.text[:300]
    assert time.monotonic() - started < 10
    growth = _peak_rss_mb(proc.proc.pid) - before
    assert growth < 150, f"peak RSS grew by {growth:.0f} MB"
    # the limits leave ordinary use alone
    r = requests.post(
        _url(url), data={"q": "select repeat('ab', 3) as r, lpad('7', 3, '0') as p", "api_key": token}
    )
    assert r.status_code == 200 and r.json()["rows"] == [{"r": "ababab", "p": "007"}], r.text


def test_queries_beyond_the_projects_slots_get_carto_429(tmp_path: Path) -> None:
    running = start_server(tmp_path / "data", sql_max_concurrent_queries=1, sql_time_limit=0.5)
    try:
        project = "default"
        r = requests.post(_url(running), data={"q": "create table t (n integer)", "api_key": running.token})
        assert r.status_code == 200, r.text
        copy = {"q": "COPY t (n) FROM STDIN", "api_key": running.token}
        with running.services.sql.slot(project, timeout=None):  # the only slot is taken
            r = requests.post(_url(running), data={"q": "select 1", "api_key": running.token}, timeout=30)
            assert r.status_code == 429, r.text
            assert "sql_max_concurrent_queries" in r.json()["error"][0]
            r = requests.post(_url(running, "/copyfrom"), params=copy, data=b"1\n2\n", timeout=30)
            assert r.status_code == 429, r.text  # a load takes a slot too
        r = requests.post(_url(running), data={"q": "select count(*) as k from t", "api_key": running.token})
        assert r.status_code == 200 and r.json()["rows"] == [{"k": 0}], (
            r.text
        )  # the refused load left nothing
        r = requests.post(_url(running, "/copyfrom"), params=copy, data=b"1\n2\n", timeout=30)
        assert r.status_code == 200 and r.json()["total_rows"] == 2, r.text
    finally:
        running.stop()
