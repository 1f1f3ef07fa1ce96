"""The catalog: migrations build exactly the models' schema, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

from entrepot.config import Settings
from entrepot.core.catalog import Catalog
from entrepot.core.catalog.models import Base
from entrepot.core.errors import Unavailable
from entrepot.core.projects import create_project, list_projects


@pytest.fixture
def catalog(tmp_path, catalog_url):
    cat = Catalog(Settings(data_dir=tmp_path, catalog_url=catalog_url).effective_catalog_url)
    yield cat
    cat.dispose()


def test_migrations_create_exactly_the_models_schema(catalog):
    revision = catalog.migrate()
    assert revision
    with catalog.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models and migrations disagree: {diff}"


def test_migrate_is_idempotent_and_keeps_data(catalog):
    first = catalog.migrate()
    create_project(catalog, "acme")
    assert catalog.migrate() == first
    assert [p.name for p in list_projects(catalog)] == ["acme"]


def test_concurrent_migrations_of_one_catalog_all_succeed(catalog):
    errors: list[BaseException] = []

    def run() -> None:
        try:
            catalog.migrate()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert {"projects", "tokens", "jobs"} <= set(inspect(catalog.engine).get_table_names())


def test_sqlite_catalog_runs_in_wal_mode_with_a_busy_timeout(tmp_path):
    cat = Catalog(Settings(data_dir=tmp_path).effective_catalog_url)
    try:
        with cat.engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
            assert conn.execute(text("PRAGMA busy_timeout")).scalar() >= 5000
    finally:
        cat.dispose()


def test_failed_transaction_rolls_back_everything(catalog):
    catalog.migrate()
    insert = "INSERT INTO projects (name, description, created_at, disabled) VALUES ('x', '', CURRENT_TIMESTAMP, false)"
    with pytest.raises(RuntimeError), catalog.session() as s:
        s.execute(text(insert))
        raise RuntimeError("boom")
    assert list_projects(catalog) == []


def test_unreachable_postgres_catalog_is_unavailable_not_a_crash():
    cat = Catalog("postgresql+psycopg://nobody@127.0.0.1:1/none?connect_timeout=2")
    try:
        with pytest.raises(Unavailable) as info:
            cat.ping()
        assert info.value.code == "catalog.unavailable"
    finally:
        cat.dispose()
