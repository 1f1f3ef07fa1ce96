"""Sync tables (``api/v1/synchronizations``) through the official ``carto`` SDK (1.11.3, unmodified).

``DatasetManager.create(url, interval)`` sets one up and waits for its first run; the SDK's
``SyncTableJobManager`` lists (its HTTP calls; the SDK itself always returns ``[]``) and
``SyncTableJob.force_sync()`` (a bodiless PUT) asks for a run. The source is a tiny HTTP server
on 127.0.0.1 whose file changes between runs. A server with ``carto_sync_min_interval=1`` runs
syncs seconds apart: a reader sees the old table while a run is held mid-download, a failing
source is reported, and a due sync runs after a restart on the same data dir.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from entrepot.config import Settings
from entrepot.server import ThreadedServer, prepare
from support.server import RunningServer, free_port, start_server
from support.sources import Source, serve_source

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from carto.auth import APIKeyAuthClient
    from carto.datasets import DatasetManager
    from carto.sql import SQLClient
    from carto.sync_tables import SyncTableJob, SyncTableJobManager
    from pyrestcli.exceptions import BadRequestException

pytestmark = pytest.mark.filterwarnings("ignore")

CSV = b"id,city,lat,lon\n1,Paris,48.85,2.35\n2,Lyon,45.76,4.83\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """CARTO's rules: a 900 s minimum interval."""
    running = start_server(tmp_path_factory.mktemp("server"), url_import_allowed_hosts=["127.0.0.1"])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def fast(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    """Syncs may run a second apart; the maintenance sweep stays out of the way."""
    running = start_server(
        tmp_path_factory.mktemp("fast"),
        url_import_allowed_hosts=["127.0.0.1"],
        carto_sync_min_interval=1,
        maintenance_interval=3600,
    )
    yield running
    running.stop()


@pytest.fixture
def source() -> Iterator[Source]:
    with serve_source() as s:
        s.body = CSV
        yield s


def _auth(server: RunningServer) -> APIKeyAuthClient:
    return APIKeyAuthClient(api_key=server.token, base_url=f"{server.url}/user/default/")


def _api(server: RunningServer, path: str = "") -> str:
    return f"{server.url}/user/default/api/v1/synchronizations/{path}"


def _sql(server: RunningServer, q: str) -> list[dict[str, Any]]:
    return SQLClient(_auth(server)).send(q)["rows"]  # type: ignore[no-any-return]


def _sync_of(server: RunningServer, dataset_id: str) -> dict[str, Any]:
    r = requests.get(_api(server), params={"api_key": server.token, "per_page": 1000})
    assert r.status_code == 200, r.text
    return next(s for s in r.json()["synchronizations"] if s["visualization_id"] == dataset_id)


def _show(server: RunningServer, sync_id: str) -> requests.Response:
    return requests.get(_api(server, sync_id), params={"api_key": server.token})


def _until(server: RunningServer, sync_id: str, done: Any, timeout: float = 60) -> dict[str, Any]:
    """Poll the sync (each GET waits up to job_response_wait) until ``done(body)``, with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        r = _show(server, sync_id)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if done(body):
            return body
        assert time.monotonic() < deadline, body
        threading.Event().wait(0.05)


def _force_sync(server: RunningServer, sync_id: str) -> None:
    job = SyncTableJob(None, None, _auth(server))
    job.id = sync_id
    job.force_sync()  # a bodiless PUT api/v1/synchronizations/<id>


def _run_now(server: RunningServer, sync_id: str, *, force: bool) -> None:
    """Ask for a run (sync_now, or the SDK's force_sync) until it is queued: the minimum gap
    (1 s on the fast server) since the last run must pass first."""
    before = _show(server, sync_id).json()["log_id"]
    deadline = time.monotonic() + 10
    while True:
        if force:
            _force_sync(server, sync_id)
            queued = _show(server, sync_id).json()["log_id"] != before
        else:
            r = requests.put(_api(server, f"{sync_id}/sync_now"), params={"api_key": server.token})
            queued = r.json()["enqueued"]
        if queued:
            return
        assert time.monotonic() < deadline
        threading.Event().wait(0.1)


def _idle(body: dict[str, Any]) -> bool:
    return body["state"] in ("success", "failure")


def test_the_sdk_creates_lists_and_forces_a_sync_table(server: RunningServer, source: Source) -> None:
    auth = _auth(server)
    dataset = DatasetManager(auth).create(source.url, 3600)
    assert dataset.name == "places" and dataset.privacy == "PRIVATE"
    assert _sql(server, "SELECT city FROM places ORDER BY id") == [{"city": "Paris"}, {"city": "Lyon"}]
    sync = _sync_of(server, dataset.id)
    assert sync["state"] == "success" and sync["interval"] == 3600 and sync["name"] == "places"
    assert sync["url"] == source.url and sync["service_item_id"] == source.url
    assert sync["ran_at"] and sync["modified_at"] and sync["run_at"] and sync["checksum"]
    assert sync["retried_times"] == 0 and sync["error_code"] is None and sync["error_message"] is None

    # the SDK's list pages through the HTTP API (and returns [] in 1.11.3)
    assert SyncTableJobManager(auth).all() == []
    second = DatasetManager(auth).create(source.url, 1800)
    assert second.name == "places_1"
    pages = [
        requests.get(_api(server), params={"api_key": server.token, "page": p, "per_page": 1}).json()
        for p in (1, 2, 3)
    ]
    assert [p["total_entries"] for p in pages] == [2, 2, 2]
    assert [len(p["synchronizations"]) for p in pages] == [1, 1, 0]

    # within 900 s of the last run, sync_now and force_sync enqueue nothing
    r = requests.put(_api(server, f"{sync['id']}/sync_now"), params={"api_key": server.token})
    assert r.status_code == 200 and r.json() == {"enqueued": False, "synchronization_id": sync["id"]}
    _force_sync(server, sync["id"])
    after = _show(server, sync["id"]).json()
    assert (after["state"], after["ran_at"], after["log_id"]) == ("success", sync["ran_at"], sync["log_id"])
    r = requests.get(_api(server, f"{sync['id']}/sync_now"), params={"api_key": server.token})
    assert r.json() == {"state": "success"}

    # an update with attributes changes them
    r = requests.put(_api(server, sync["id"]), json={"interval": 7200, "api_key": server.token})
    assert r.status_code == 200 and r.json()["interval"] == 7200

    # deleting a sync keeps its table; deleting a dataset deletes its sync
    r = requests.delete(_api(server, sync["id"]), params={"api_key": server.token})
    assert r.status_code == 204
    assert _show(server, sync["id"]).status_code == 404
    assert DatasetManager(auth).get("places").name == "places"
    other = _sync_of(server, second.id)
    second.delete()
    assert _show(server, other["id"]).status_code == 404
    r = requests.get(_api(server), params={"api_key": server.token})
    assert r.json() == {"synchronizations": [], "total_entries": 0}


def test_refusals_in_carto_envelopes(server: RunningServer, source: Source) -> None:
    with pytest.raises(BadRequestException):
        SyncTableJobManager(_auth(server)).create(source.url, 60)
    r = requests.post(_api(server), json={"url": source.url, "interval": 899, "api_key": server.token})
    assert r.status_code == 400
    assert r.json() == {"errors": "Validation failed: interval must be greater than or equal to 900 seconds"}
    r = _show(server, "nope")
    assert r.status_code == 404 and isinstance(r.json()["errors"], str)
    r = requests.get(_api(server))  # no key
    assert r.status_code == 401 and "errors" in r.json()
    # a source on a private address not allowed by the settings is refused at once
    r = requests.post(
        _api(server), json={"url": "http://10.1.2.3/x.csv", "interval": 3600, "api_key": server.token}
    )
    assert r.status_code == 400 and "private" in r.json()["errors"]


def test_a_changed_source_is_reimported_atomically(fast: RunningServer, source: Source) -> None:
    dataset = DatasetManager(_auth(fast)).create(source.url, 1)
    first = _sync_of(fast, dataset.id)
    assert _sql(fast, "SELECT count(*) AS n FROM places") == [{"n": 2}]

    # unchanged: the run is skipped, ran_at moves, modified_at does not
    _run_now(fast, first["id"], force=True)
    skipped = _until(fast, first["id"], lambda b: _idle(b) and b["ran_at"] != first["ran_at"])
    assert skipped["state"] == "success" and skipped["modified_at"] == first["modified_at"]

    # a map of the table: its tiles follow the re-import (new rows, a new ETag)
    config = {"version": "1.0.1", "layers": [{"type": "mvt", "options": {"sql": "select * from places"}}]}
    group = requests.post(
        f"{fast.url}/user/default/api/v1/map", json={**config, "api_key": fast.token}
    ).json()
    tile_url = f"{fast.url}/user/default/api/v1/map/{group['layergroupid']}/0/0/0/0.mvt"
    before = requests.get(tile_url)
    assert before.status_code == 200 and b"Nice" not in before.content and b"Lyon" in before.content

    # changed, and held mid-download: readers see the old rows while the sync is syncing
    source.body = CSV + b"3,Nice,43.70,7.26\n"
    source.gate = threading.Event()
    _run_now(fast, first["id"], force=False)
    _until(fast, first["id"], lambda b: b["state"] == "syncing")
    assert _sql(fast, "SELECT count(*) AS n FROM places") == [{"n": 2}]
    source.gate.set()
    done = _until(fast, first["id"], _idle)
    assert done["state"] == "success" and done["modified_at"] != first["modified_at"]
    assert done["visualization_id"] == dataset.id
    assert _sql(fast, "SELECT city FROM places ORDER BY id")[-1] == {"city": "Nice"}
    assert DatasetManager(_auth(fast)).get(dataset.id).name == "places"
    after = requests.get(tile_url)
    assert b"Nice" in after.content and after.headers["etag"] != before.headers["etag"]

    # the source starts failing: CARTO's error code and a message, retried_times counts
    source.gate = None
    source.status = 404
    _run_now(fast, first["id"], force=True)
    failed = _until(fast, first["id"], lambda b: b["state"] == "failure")
    assert failed["error_code"] == 1100 and "HTTP 404" in failed["error_message"]
    assert failed["retried_times"] == 1 and failed["run_at"]
    assert _sql(fast, "SELECT count(*) AS n FROM places") == [{"n": 3}]  # the table is left as it was


def _restart(data_dir: Path, token: str, **overrides: Any) -> RunningServer:
    settings = Settings(data_dir=data_dir, port=free_port(), log_level="warning", **overrides)
    prepared = prepare(settings)
    assert prepared.bootstrap is None  # the same data dir
    server = ThreadedServer(settings, prepared.services).start()
    return RunningServer(
        url=settings.effective_public_url,
        token=token,
        project_id=0,
        services=prepared.services,
        settings=settings,
        _server=server,
    )


def test_the_schedule_survives_a_restart(tmp_path: Path, source: Source) -> None:
    knobs: dict[str, Any] = {"url_import_allowed_hosts": ["127.0.0.1"], "carto_sync_min_interval": 1}
    first = start_server(tmp_path, maintenance_interval=3600, **knobs)
    try:
        dataset = DatasetManager(_auth(first)).create(source.url, 1)
        sync = _sync_of(first, dataset.id)
    finally:
        first.stop()
    source.body = CSV + b"3,Nice,43.70,7.26\n"
    second = _restart(tmp_path, first.token, maintenance_interval=0.2, workers=2, **knobs)
    try:  # nobody asks for it: the sweep finds the sync due and runs it
        done = _until(second, sync["id"], lambda b: _idle(b) and b["modified_at"] != sync["modified_at"])
        assert done["state"] == "success"
        assert _sql(second, "SELECT count(*) AS n FROM places") == [{"n": 3}]
    finally:
        second.stop()


def test_dataset_creation_reports_a_failed_first_run(server: RunningServer, source: Source) -> None:
    source.status = 500
    # carto 1.11.3 reads get_error_text, a field its SyncTableJob does not declare: a failed
    # first run surfaces as AttributeError (an SDK bug no answer can avoid); the sync shows why
    with pytest.raises(AttributeError, match="get_error_text"):
        DatasetManager(_auth(server)).create(source.url, 3600)
    r = requests.get(_api(server), params={"api_key": server.token, "per_page": 1000})
    failed = [s for s in r.json()["synchronizations"] if s["state"] == "failure"]
    assert failed and failed[-1]["error_code"] == 1001 and "HTTP 500" in failed[-1]["error_message"]
    assert failed[-1]["visualization_id"] is None


def test_a_dataset_shows_its_sync_to_who_may_see_the_sync(server: RunningServer, source: Source) -> None:
    """``synchronization`` of a dataset's JSON (and of its table's) is the sync's JSON for a
    master token and for the token that created it; null for other readers."""
    source.body = b"id,name\n1,a\n"
    creator = server.token_for(bucket_permissions={"in.c-public": "write"})
    dataset = DatasetManager(
        APIKeyAuthClient(api_key=creator, base_url=f"{server.url}/user/default/")
    ).create(source.url.replace("places", "shown"), 3600)
    sync = _sync_of(server, dataset.id)
    assert dataset.synchronization.id == sync["id"] and dataset.synchronization.url == sync["url"]
    viz = f"{server.url}/user/default/api/v1/viz/{dataset.id}"
    table = f"{server.url}/user/default/api/v1/tables/{dataset.id}"
    for key in (server.token, creator):
        shown = requests.get(viz, params={"api_key": key}).json()["synchronization"]
        assert shown == {**sync, "updated_at": shown["updated_at"]}
        assert requests.get(table, params={"api_key": key}).json()["synchronization"]["id"] == sync["id"]
        listed = requests.get(
            f"{server.url}/user/default/api/v1/viz",
            params={"api_key": key, "type": "table", "per_page": 1000},
        ).json()["visualizations"]
        assert next(v for v in listed if v["id"] == dataset.id)["synchronization"]["id"] == sync["id"]
    reader = server.token_for(bucket_permissions={"in.c-public": "read"})
    assert requests.get(viz, params={"api_key": reader}).json()["synchronization"] is None
    r = requests.put(viz, json={"privacy": "PUBLIC", "api_key": server.token})
    assert r.status_code == 200 and r.json()["synchronization"]["id"] == sync["id"]
    assert requests.get(viz).json()["synchronization"] is None  # anonymous
    plain = DatasetManager(_auth(server)).get(dataset.id)
    assert plain.dependent_visualizations_count == 0
