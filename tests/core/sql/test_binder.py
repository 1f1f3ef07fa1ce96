"""The binder wall on its own: DuckDB's plan decides what a statement may read, not its text.

These statements go straight to ``binder.check`` on a real, locked sandbox, as if the dialect
had been fooled, so each test shows the second wall holding by itself.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from entrepot.config import Settings
from entrepot.core import errors as E
from entrepot.core.engine import Engine
from entrepot.core.sql import binder
from entrepot.core.sql.sandbox import Sandbox

T = '"in.c-public"."t"'


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("binder")))
    engine = Engine(settings)
    with engine.cursor("p") as cur:
        cur.execute('CREATE SCHEMA "in.c-public"')
        cur.execute(f"CREATE TABLE {T} AS SELECT range AS n FROM range(3)")
    box = Sandbox(settings, engine.lake("p"))
    yield box
    box.close()
    engine.close()


@pytest.fixture
def cur(sandbox: Sandbox) -> Iterator[duckdb.DuckDBPyConnection]:
    with sandbox.cursor(write=True) as cursor:
        yield cursor


ALLOWED = [
    f"SELECT * FROM {T}",
    f"SELECT n, count(*) FROM {T} GROUP BY n ORDER BY n LIMIT 2",
    f"SELECT * FROM {T} a JOIN {T} b USING (n) WHERE a.n IN (SELECT n FROM {T})",
    "SELECT * FROM generate_series(1, 3) g(i), range(2) r, unnest([1, 2]) u",
    "WITH RECURSIVE r(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM r WHERE i < 3) SELECT * FROM r",
    "SELECT * FROM (VALUES (1), (2)) v(a)",
    f"SELECT n, row_number() OVER (ORDER BY n) FROM {T}",
    f"INSERT INTO {T} SELECT 10",
    f"UPDATE {T} SET n = n + 1 WHERE n > 100",
    f"DELETE FROM {T} WHERE n > 100",
    f'CREATE TABLE "in.c-public".u AS SELECT * FROM {T}',
    'CREATE TABLE "in.c-public".v (a INTEGER)',
    f"SELECT pg_repeat('ab', 3), pg_astext(ST_Point(1, 2)) FROM {T}",
]


@pytest.mark.parametrize("sql", ALLOWED)
def test_plans_over_lake_tables_and_allowed_functions_pass(cur: duckdb.DuckDBPyConnection, sql: str) -> None:
    cur.execute("BEGIN TRANSACTION")
    try:
        binder.check(cur, sql)
    finally:
        cur.execute("ROLLBACK")


REFUSED = [
    "SELECT * FROM duckdb_databases()",
    "SELECT database_name, path FROM duckdb_databases",
    "SELECT * FROM duckdb_settings()",
    "SELECT * FROM pg_settings",
    "SELECT * FROM duckdb_secrets()",
    "SELECT * FROM duckdb_tables()",
    "SELECT * FROM information_schema.tables",
    "SELECT * FROM pg_catalog.pg_class",
    "WITH RECURSIVE a AS (SELECT database_name, path FROM duckdb_databases), "
    "duckdb_databases AS (SELECT 1 AS x) SELECT * FROM a",
    f"SELECT * FROM {T} WHERE n IN (SELECT 1 FROM duckdb_settings())",
    f"SELECT * FROM {T}, LATERAL (SELECT value FROM duckdb_settings() LIMIT 1) s",
    "SELECT (SELECT count(*) FROM duckdb_extensions())",
    "FROM duckdb_databases()",
    "SELECT * FROM query_table('duckdb_databases')",
    "SELECT * FROM __ducklake_metadata_lake.main.ducklake_table",
    "SELECT * FROM ducklake_snapshots('lake')",
    "SELECT * FROM system.information_schema.schemata",
    "SELECT * FROM duckdb_functions() WHERE function_name = 'read_csv'",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_plans_reading_system_objects_are_refused_whatever_the_shape(
    cur: duckdb.DuckDBPyConnection, sql: str
) -> None:
    with pytest.raises(E.PermissionDenied) as caught:
        binder.check(cur, sql)
    assert "may not use" in caught.value.message
    assert caught.value.code == "sql.refusedObject"


def test_the_recursive_cte_escape_is_refused_by_the_plan(cur: duckdb.DuckDBPyConnection) -> None:
    sql = (
        "WITH RECURSIVE a AS (SELECT database_name, path FROM duckdb_databases), "
        "duckdb_databases AS (SELECT 1 AS x) SELECT * FROM a"
    )
    with pytest.raises(E.PermissionDenied, match="duckdb_databases"):
        binder.check(cur, sql)


def test_a_statement_planned_as_several_is_refused(cur: duckdb.DuckDBPyConnection) -> None:
    with pytest.raises(E.InvalidInput, match="cannot be checked"):
        binder.check(cur, f"PIVOT {T} ON n USING count(*)")


def test_the_sandbox_holds_no_password_of_a_postgres_lake_catalog(tmp_path: Path, postgres_cluster) -> None:  # type: ignore[no-untyped-def]
    password = "pg-canary-9f3b"
    url = postgres_cluster.password_login("lake_owner", password, "lakes_pw")
    settings = Settings(data_dir=tmp_path, lake_catalog_url=url)
    engine = Engine(settings)
    try:
        with engine.cursor("p") as cur:  # SCRAM: this works only if the password reached PostgreSQL
            cur.execute('CREATE SCHEMA "in.c-public"')
            cur.execute(f"CREATE TABLE {T} AS SELECT 1 AS n")
        box = Sandbox(settings, engine.lake("p"), read_only=True)
        try:
            with box.cursor() as cur:
                assert cur.execute(f"SELECT n FROM {T}").fetchall() == [(1,)]
            seen = repr(box.conn.execute("SELECT * FROM duckdb_databases()").fetchall())
            seen += repr(box.conn.execute("SELECT * FROM duckdb_secrets()").fetchall())
            assert "lake_owner" in seen  # the attach string is there ...
            assert password not in seen  # ... without its password; the secret is redacted
        finally:
            box.close()
    finally:
        engine.close()
