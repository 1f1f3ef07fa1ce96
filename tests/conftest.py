"""Shared fixtures: real entrepot servers on free ports with temporary data dirs."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from support.server import RunningServer, start_server


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """One server per test module (uvicorn in a thread, 2 job workers, SQLite catalog)."""
    running = start_server(tmp_path_factory.mktemp("server"))
    yield running
    running.stop()


@pytest.fixture
def fresh_server(tmp_path) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    """A server of its own for a test that needs an empty project."""
    running = start_server(tmp_path / "data")
    yield running
    running.stop()


@pytest.fixture(scope="session")
def postgres_cluster(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """A throw-away PostgreSQL cluster (skipped, with the reason, only where no binaries exist)."""
    from support.postgres import PostgresCluster

    cluster = PostgresCluster(tmp_path_factory.mktemp("pg"))
    ok, reason = cluster.available()
    if not ok:
        if os.environ.get("ENTREPOT_TEST_REQUIRE_POSTGRES"):  # set by .ci/run
            pytest.fail(f"PostgreSQL is required here but not usable: {reason}")
        pytest.skip(f"PostgreSQL server binaries not found: {reason}")
    cluster.start()
    yield cluster
    cluster.stop()


_db_counter = iter(range(1, 1_000_000))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def catalog_url(request: pytest.FixtureRequest, tmp_path) -> str | None:  # type: ignore[no-untyped-def]
    """Run a test on the SQLite catalog (None = default file) and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return None
    cluster = request.getfixturevalue("postgres_cluster")
    return cluster.create_database(f"catalog_{next(_db_counter)}")


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    """moto's standalone S3 server on 127.0.0.1 (a subprocess), for tests against an S3 blob store.

    ``s3_server.create_bucket()`` makes a fresh bucket, ``s3_server.store(bucket, prefix)`` an
    S3BlobStore on it, ``s3_server.settings(bucket, prefix)`` the server settings that use it.
    """
    import importlib.util

    from support.s3 import S3Server

    if importlib.util.find_spec("moto") is None:
        if os.environ.get("CI"):
            pytest.fail("moto[server] (the test extra) is required for the S3 blob store tests")
        pytest.skip("moto[server] is not installed: pip install -e '.[test]'")
    server = S3Server(tmp_path_factory.mktemp("s3")).start()
    yield server
    server.stop()
