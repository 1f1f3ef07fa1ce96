"""The SDK's CARTO platform (``client.carto``): API keys, imports, datasets and sync tables.

Against a real server that answers at once (``job_response_wait=0``: an import is seen while it
runs) and may download from 127.0.0.1 (the sync tables' source, ``support.sources``).
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator

import httpx
import pytest

from entrepot.client import Client, ImportFailed, InvalidRequest, InvalidToken, NotFound, PermissionDenied
from entrepot.client.carto import (
    IMPORT_STATES,
    SYNC_STATES,
    ApiKey,
    Dataset,
    Import,
    ImportJob,
    SchemaGrant,
    SyncJob,
    SyncTable,
    TableGrant,
)
from support.server import RunningServer, start_server
from support.sources import serve_source
from support.transport import scripted

STORES = b"store,lat,lon\nLouvre,48.8606,2.3376\nBellecour,45.7578,4.8320\n"
GEOJSON = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"cafe": "Flore"},
            "geometry": {"type": "Point", "coordinates": [2.33, 48.85]},
        },
        {
            "type": "Feature",
            "properties": {"cafe": "Procope"},
            "geometry": {"type": "Point", "coordinates": [2.34, 48.85]},
        },
    ],
}


@pytest.fixture(scope="module")
def carto_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(
        tmp_path_factory.mktemp("carto-sdk"), job_response_wait=0, url_import_allowed_hosts=["127.0.0.1"]
    )
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def client(carto_server: RunningServer) -> Iterator[Client]:
    with Client(carto_server.url, carto_server.token) as c:
        yield c


def _in_order(states: list[str], order: tuple[str, ...]) -> bool:
    positions = [order.index(s) for s in states]
    return positions == sorted(positions) and len(set(positions)) == len(positions)


# -- what the SDK sends and how it reads CARTO's error envelopes --------------------------------
def test_carto_error_envelopes_become_typed_errors():
    taken = httpx.Response(422, json={"errors": "Validation failed: Name has already been taken"})
    with scripted(taken) as (c, _), pytest.raises(InvalidRequest, match="Name has already been taken"):
        c.carto.api_keys.create("taken")
    refused = httpx.Response(403, json={"errors": {"imports": "no create grant"}})
    with scripted(refused) as (c, _), pytest.raises(PermissionDenied, match="no create grant"):
        c.carto.import_file(b"a\n1\n")
    bad = httpx.Response(400, json={"errors": ["bad privacy"]})
    with scripted(bad) as (c, _), pytest.raises(InvalidRequest, match="bad privacy"):
        c.carto.datasets.update("x", description="d")


def test_import_file_sends_a_multipart_file_with_the_options():
    with scripted(httpx.Response(200, json={"item_queue_id": "7", "success": True})) as (c, rec):
        job = c.carto.import_file(
            io.BytesIO(b"a,b\n1,2\n"), filename="x.csv", table_name="t", privacy="PUBLIC"
        )
    assert isinstance(job, ImportJob) and job.id == "7"
    request = rec.requests[0]
    assert request.method == "POST" and request.url.path == "/api/v1/imports"
    assert dict(request.url.params) == {"table_name": "t", "privacy": "public"}
    assert request.headers["content-type"].startswith("multipart/form-data")
    assert b'filename="x.csv"' in rec.bodies[0] and b"a,b\n1,2\n" in rec.bodies[0]


# -- imports ----------------------------------------------------------------------------------------
def test_import_a_csv_with_lat_lon_seeing_the_states_in_order(client, tmp_path):
    path = tmp_path / "stores.csv"
    path.write_bytes(STORES)
    job = client.carto.import_file(path, table_name="sdk_stores")
    seen: list[str] = []
    done = job.wait(timeout=60, on_state=lambda imp: seen.append(imp.state))
    assert isinstance(done, Import) and done.state == "complete" and done.success is True
    assert seen[-1] == "complete" and _in_order(seen, IMPORT_STATES), seen
    assert done.table_name == "sdk_stores" and done.dataset_id and done.tables_created == 1
    assert done.error_code is None and job.last == done
    rows = client.sql.query(
        "select store, ST_X(the_geom) as x, ST_Y(the_geom) as y from sdk_stores order by store"
    )
    assert rows.rows == [
        {"store": "Bellecour", "x": 4.832, "y": 45.7578},
        {"store": "Louvre", "x": 2.3376, "y": 48.8606},
    ]
    assert client.carto.get_import(job.id) == done
    assert client.carto.follow(job.id).wait(timeout=10) == done


def test_import_geojson_bytes_and_a_file_object(client):
    job = client.carto.import_file(json.dumps(GEOJSON).encode(), filename="cafes.geojson", privacy="public")
    done = job.wait(timeout=60)
    assert done.table_name == "cafes"
    dataset = client.carto.datasets.get("cafes")
    assert dataset.privacy == "public" and dataset.geometry and dataset.row_count == 2
    again = client.carto.import_file(io.BytesIO(json.dumps(GEOJSON).encode()), filename="cafes.geojson").wait(
        60
    )
    assert again.table_name == "cafes_1"  # the name was taken


def test_a_failing_import_raises_with_cartos_error_code(client):
    job = client.carto.import_file(b"", filename="empty.csv")
    seen: list[str] = []
    with pytest.raises(ImportFailed) as info:
        job.wait(timeout=60, on_state=lambda imp: seen.append(imp.state))
    error = info.value
    assert error.error_code == 1005 and error.code == "1005"
    assert "empty" in error.message.lower() and "1005" in str(error)
    assert isinstance(error.job, Import) and error.job.state == "failure" and seen[-1] == "failure"
    with pytest.raises(NotFound):
        client.carto.get_import("999999")


def test_import_url_is_downloaded_by_the_server(client):
    with serve_source("shops.csv") as source:
        source.body = STORES
        done = client.carto.import_url(source.url, table_name="sdk_shops").wait(timeout=60)
    assert done.table_name == "sdk_shops" and done.original_url == source.url and source.hits == 1


# -- datasets ---------------------------------------------------------------------------------------
def test_dataset_privacy_decides_what_anonymous_sql_reads(client, carto_server):
    client.carto.import_file(STORES, filename="private_stores.csv").wait(timeout=60)
    dataset = client.carto.datasets.get("private_stores")
    assert isinstance(dataset, Dataset) and dataset.privacy == "private" and dataset.row_count == 2
    assert client.carto.datasets.get(dataset.id) == dataset
    assert "private_stores" in [d.name for d in client.carto.datasets.list()]

    def anonymous() -> httpx.Response:
        return httpx.get(
            f"{carto_server.url}/user/default/api/v2/sql",
            params={"q": "select count(*) as n from private_stores"},
        )

    assert anonymous().status_code == 403
    changed = client.carto.datasets.update(
        dataset.id, privacy="LINK", description="Two stores", tags=["retail"]
    )
    assert (changed.privacy, changed.description, changed.tags) == ("link", "Two stores", ("retail",))
    assert anonymous().json()["rows"] == [{"n": 2}]
    client.carto.datasets.update("private_stores", privacy="private")
    assert anonymous().status_code == 403
    with pytest.raises(ValueError, match="privacy"):
        client.carto.datasets.update("private_stores", privacy="secret")

    client.carto.datasets.delete("private_stores")
    with pytest.raises(NotFound):
        client.carto.datasets.get("private_stores")


# -- API keys ---------------------------------------------------------------------------------------
def test_api_keys_create_list_regenerate_delete(client, carto_server):
    client.sql.query("create table if not exists visits (id integer, city text)")
    key = client.carto.api_keys.create(
        "sdk-app",
        apis=["sql"],
        tables=[TableGrant("public", "visits", ("select", "insert"))],
        schemas=[SchemaGrant("public")],
    )
    assert isinstance(key, ApiKey) and key.type == "regular" and key.token
    assert key.tables == (TableGrant("public", "visits", ("select", "insert")),)
    assert key.schemas == (SchemaGrant("public", ("create",)),) and key.apis == ("sql",)
    got = client.carto.api_keys.get("sdk-app")
    assert got.tables == key.tables and got.name == "sdk-app"
    assert "sdk-app" in [k.name for k in client.carto.api_keys.list()]
    assert [k.type for k in client.carto.api_keys.list(type=["master", "default"])] == ["master", "default"]
    assert [k.token for k in client.carto.api_keys.list(type="default")] == ["default_public"]
    with pytest.raises(InvalidRequest, match="already been taken"):
        client.carto.api_keys.create("sdk-app", apis=["sql"])

    with Client(carto_server.url, key.token) as as_key:
        assert as_key.sql.query("select count(*) as n from visits").rows == [{"n": 0}]
    new = client.carto.api_keys.regenerate("sdk-app")
    assert new.token and new.token != key.token
    with Client(carto_server.url, key.token, retries=0) as old, pytest.raises(InvalidToken):
        old.sql.query("select 1")

    client.carto.api_keys.delete("sdk-app")
    with pytest.raises(NotFound):
        client.carto.api_keys.get("sdk-app")
    assert "sdk-app" not in [k.name for k in client.carto.api_keys.list()]


# -- sync tables ------------------------------------------------------------------------------------
def test_sync_table_from_a_url(client):
    with serve_source("places.csv") as source:
        source.body = b"place,lat,lon\nA,1.0,2.0\n"
        job = client.carto.import_url(source.url, sync_interval=3600, table_name="sdk_places")
        assert isinstance(job, SyncJob)
        seen: list[str] = []
        sync = job.wait(timeout=60, on_state=lambda s: seen.append(s.state))
        assert isinstance(sync, SyncTable) and sync.state == "success" and sync.interval == 3600
        assert seen[-1] == "success" and _in_order(seen, SYNC_STATES), seen
        assert sync.name == "sdk_places" and sync.dataset_id and source.hits == 1
        assert client.carto.datasets.get(sync.dataset_id).name == "sdk_places"
        assert sync.id in [s.id for s in client.carto.sync_tables.list()]
        assert client.carto.sync_tables.get(sync.id).url == source.url
        assert client.carto.sync_tables.sync_now(sync.id) is False  # the last run is under 900 s old
        with pytest.raises(InvalidRequest, match="900"):
            client.carto.sync_tables.create(source.url, interval=60)
        with pytest.raises(ValueError, match="sync table"):
            client.carto.import_url(source.url, sync_interval=3600, privacy="public")  # type: ignore[call-overload]

    client.carto.sync_tables.delete(sync.id)
    with pytest.raises(NotFound):
        client.carto.sync_tables.get(sync.id)
    assert client.carto.datasets.get("sdk_places").row_count == 1  # the table stays


def test_a_failing_sync_run_raises_import_failed(client):
    with serve_source("gone.csv") as source:
        source.status = 404
        job = client.carto.sync_tables.create(source.url, interval=3600)
        with pytest.raises(ImportFailed) as info:
            job.wait(timeout=60)
    assert info.value.error_code == 1100 and isinstance(info.value.job, SyncTable)
    assert "sync table" in str(info.value)
    client.carto.sync_tables.delete(job.id)
