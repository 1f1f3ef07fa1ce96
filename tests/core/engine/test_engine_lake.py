"""Lakes: one per project, persistent, isolated, safe to use from many threads."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from entrepot.config import Settings
from entrepot.core import errors as E
from entrepot.core.engine import Engine, execute


def test_lake_round_trip_persists_across_engine_restart(settings: Settings) -> None:
    engine = Engine(settings)
    with engine.lake("acme").cursor() as cur:
        cur.execute('CREATE SCHEMA "in.c-main"')
        cur.execute(
            'CREATE TABLE "in.c-main".t AS SELECT range AS id, range::VARCHAR AS name FROM range(1000)'
        )
    engine.close()

    lake_dir = settings.data_dir / "lakes" / "acme"
    assert (lake_dir / "catalog.sqlite").is_file()
    assert list((lake_dir / "data").rglob("*.parquet")), "table data is written as Parquet under the data dir"

    reopened = Engine(settings)
    try:
        with reopened.lake("acme").cursor(write=False) as cur:
            assert cur.execute('SELECT count(*), sum(id) FROM "in.c-main".t').fetchone() == (1000, 499500)
            assert cur.execute("SELECT current_database()").fetchone() == ("lake",)
    finally:
        reopened.close()


def test_timestamptz_values_can_be_fetched(engine: Engine) -> None:
    with engine.lake("acme").cursor() as cur:
        row = cur.execute("SELECT TIMESTAMPTZ '2024-05-01 12:00:00+00'").fetchone()
    assert row is not None and row[0].year == 2024


def test_two_projects_are_isolated(engine: Engine) -> None:
    with engine.lake("one").cursor() as cur:
        cur.execute("CREATE TABLE t AS SELECT 1 AS a")
    with engine.lake("two").cursor() as cur:
        assert cur.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake'"
        ).fetchone() == (0,)
        with pytest.raises(Exception, match="does not exist"):
            cur.execute("SELECT * FROM t")
        cur.execute("CREATE TABLE t AS SELECT 2 AS a")
    with engine.lake("one").cursor() as cur:
        assert cur.execute("SELECT a FROM t").fetchall() == [(1,)]
    assert engine.lake("one") is engine.lake("one")
    assert engine.lake("one") is not engine.lake("two")


def test_lake_settings_come_from_settings(engine: Engine) -> None:
    with engine.lake("acme").cursor() as cur:
        threads = cur.execute("SELECT current_setting('threads')").fetchone()
        memory = cur.execute("SELECT current_setting('memory_limit')").fetchone()
        autoinstall = cur.execute("SELECT current_setting('autoinstall_known_extensions')").fetchone()
    assert threads == (2,)
    assert memory is not None and memory[0].startswith(("488", "512"))
    assert autoinstall == (False,)


def test_lake_data_path_setting_moves_the_parquet_files(
    tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:
    settings = make_settings(tmp_path / "data", lake_data_path=str(tmp_path / "parquet"))
    engine = Engine(settings)
    try:
        with engine.lake("acme").cursor() as cur:
            cur.execute("CREATE TABLE t AS SELECT range AS id FROM range(500)")
    finally:
        engine.close()
    assert list((tmp_path / "parquet" / "acme").rglob("*.parquet"))
    assert not list((tmp_path / "data").rglob("*.parquet"))


def test_concurrent_cursors_from_eight_threads(engine: Engine) -> None:
    lake = engine.lake("acme")
    with lake.cursor() as cur:
        cur.execute("CREATE TABLE t (worker INTEGER, n BIGINT)")
    errors: list[BaseException] = []
    counts: list[int] = []

    def work(worker: int) -> None:
        try:
            for _ in range(5):
                with lake.cursor() as cur:
                    execute(cur, "INSERT INTO t SELECT ?, range FROM range(100)", [worker], timeout=30)
                with lake.cursor(write=False) as cur:
                    row = execute(cur, "SELECT count(*) FROM t", timeout=30).fetchone()
                    counts.append(row[0] if row else -1)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    with lake.cursor(write=False) as cur:
        assert cur.execute("SELECT count(*), count(DISTINCT worker) FROM t").fetchone() == (4000, 8)
    assert all(0 < c <= 4000 for c in counts)


@pytest.mark.parametrize("name", ["", "../etc", "a/b", "a b", "x" * 65, "-lead", "dot.ted", "back\\slash"])
def test_invalid_project_name_is_invalid_input(engine: Engine, name: str) -> None:
    with pytest.raises(E.InvalidInput, match="invalid project name"):
        engine.lake(name)


def test_ping(engine: Engine) -> None:
    engine.ping()


def test_drop_lake_deletes_its_files_and_a_new_one_starts_empty(engine: Engine, settings: Settings) -> None:
    with engine.lake("acme").cursor() as cur:
        cur.execute("CREATE TABLE t AS SELECT range AS id FROM range(100)")
    engine.drop_lake("acme")
    assert not (settings.data_dir / "lakes" / "acme").exists()
    with engine.lake("acme").cursor() as cur:
        assert cur.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'lake'"
        ).fetchone() == (0,)


def test_closed_engine_refuses_lakes(settings: Settings) -> None:
    engine = Engine(settings)
    lake = engine.lake("acme")
    engine.close()
    with pytest.raises(E.Unavailable):
        engine.lake("other")
    with pytest.raises(E.Unavailable), lake.cursor():
        pass


def test_sqlite_catalog_uses_wal(engine: Engine, settings: Settings) -> None:
    with engine.lake("acme").cursor() as cur:
        cur.execute("CREATE TABLE t AS SELECT 1 AS a")
    with sqlite3.connect(settings.data_dir / "lakes" / "acme" / "catalog.sqlite") as db:
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


@pytest.mark.postgres
def test_postgres_catalog_keeps_one_schema_per_project(
    postgres_cluster, tmp_path: Path, make_settings: Callable[..., Settings]
) -> None:  # type: ignore[no-untyped-def]
    import psycopg

    from entrepot.core.engine.lake import libpq_conninfo

    url = postgres_cluster.create_database("lakes_engine")
    settings = make_settings(tmp_path / "data", lake_catalog_url=url)
    engine = Engine(settings)
    try:
        for project in ("alpha", "my-beta"):
            with engine.lake(project).cursor() as cur:
                cur.execute(f"CREATE TABLE t AS SELECT range AS id, '{project}' AS p FROM range(300)")
        engine.close()
        engine = Engine(settings)
        for project in ("alpha", "my-beta"):
            with engine.lake(project).cursor(write=False) as cur:
                assert cur.execute("SELECT count(*), min(p) FROM t").fetchone() == (300, project)
        with psycopg.connect(libpq_conninfo(url)) as conn:
            schemas = {r[0] for r in conn.execute("SELECT schema_name FROM information_schema.schemata")}
        assert {"lake_alpha", "lake_my-beta"} <= schemas
        assert list((settings.data_dir / "lakes" / "alpha" / "data").rglob("*.parquet"))
        engine.drop_lake("alpha")
        with psycopg.connect(libpq_conninfo(url)) as conn:
            schemas = {r[0] for r in conn.execute("SELECT schema_name FROM information_schema.schemata")}
        assert "lake_alpha" not in schemas and "lake_my-beta" in schemas
    finally:
        engine.close()


def test_work_larger_than_the_memory_limit_spills_to_the_data_dir(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path / "data", engine_threads=2, engine_memory_limit="100MB")
    engine = Engine(settings)
    try:
        with engine.cursor("acme") as cur:
            # a 5M-row sort does not fit in 100 MB: DuckDB must spill to <data dir>/tmp/engine/acme
            cur.execute(
                "CREATE TABLE big AS SELECT i, 'value_' || (i * 7919 % 5000000) AS v FROM range(5000000) t(i) "
                "ORDER BY v"
            )
            assert cur.execute("SELECT count(*) FROM big").fetchone() == (5000000,)
        assert (settings.data_dir / "tmp" / "engine" / "acme").is_dir()
    finally:
        engine.close()
