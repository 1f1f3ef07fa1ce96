"""Sync tables in the core, on SQLite and PostgreSQL catalogs: the schedule (the sweep called
directly with a future clock), claims that never double-queue, skipped unchanged sources (ETag
and checksum), atomic re-imports that keep the dataset, failures, revoked keys, deletes."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import timedelta

import duckdb
import pytest

from entrepot.config import Settings
from entrepot.core import auth
from entrepot.core import errors as E
from entrepot.core.clock import utcnow
from entrepot.core.datasets import DatasetChange, delete_dataset, get_dataset, update_dataset
from entrepot.core.engine.tables import TableRef
from entrepot.core.imports.sync import (
    SyncChange,
    SyncOptions,
    SyncView,
    create_sync,
    delete_sync,
    get_sync,
    list_syncs,
    sweep,
    sync_now,
    update_sync,
)
from entrepot.core.services import Services
from entrepot.core.sql.service import Caller
from support.sources import Source, serve_source


@pytest.fixture
def settings(tmp_path, catalog_url) -> Settings:  # type: ignore[no-untyped-def]
    return Settings(
        data_dir=tmp_path,
        catalog_url=catalog_url,
        url_import_allowed_hosts=["127.0.0.1"],
        carto_sync_min_interval=1,
        carto_sync_max_retries=2,
        job_response_wait=0.5,
    )


@pytest.fixture
def source() -> Iterator[Source]:
    with serve_source() as s:
        s.body = b"id,city,lat,lon\n1,Paris,48.85,2.35\n2,Lyon,45.76,4.83\n"
        yield s


def _settled(services: Services, caller: Caller, sync_id: str, timeout: float = 60) -> SyncView:
    """Poll until the sync is idle (success or failure), with a deadline."""
    deadline = time.monotonic() + timeout
    while True:
        view = get_sync(services, caller, sync_id)  # waits up to job_response_wait itself
        if view.state in ("success", "failure"):
            return view
        assert time.monotonic() < deadline, view
        threading.Event().wait(0.05)


def _later() -> Iterator[object]:
    """Clocks for the sweep: each one an hour after the previous (every sync is due)."""
    hours = 1
    while True:
        yield utcnow() + timedelta(hours=hours)
        hours += 1


def test_a_sync_creates_then_reimports_only_when_the_source_changes(
    services: Services, master: auth.Principal, source: Source
) -> None:
    services.start_workers(2)
    caller = Caller(master, "acme")
    clock = _later()
    created = create_sync(services, caller, SyncOptions(url=source.url, interval=3600, table_name="places"))
    assert created.state in ("queued", "success") and created.interval == 3600
    first = _settled(services, caller, created.id)
    assert first.state == "success", first
    assert first.name == "places" and first.dataset_id is not None and first.modified_at is not None
    assert first.checksum and first.retried_times == 0 and first.run_at is not None
    dataset = get_dataset(services, caller, first.dataset_id)
    assert dataset.name == "places" and dataset.row_count == 2 and dataset.privacy == "private"
    update_dataset(services, caller, dataset.id, DatasetChange(privacy="public", text={"description": "d"}))

    # nothing is due yet; an hour later it is, and two concurrent sweeps queue it once
    assert sweep(services)["queued"] == 0
    now = next(clock)
    results: list[int] = []
    sweepers = [
        threading.Thread(target=lambda: results.append(sweep(services, now=now)["queued"])) for _ in range(3)
    ]
    for t in sweepers:
        t.start()
    for t in sweepers:
        t.join()
    assert sorted(results) == [0, 0, 1]
    unchanged = _settled(services, caller, created.id)
    assert unchanged.state == "success" and unchanged.ran_at and first.ran_at
    assert unchanged.ran_at > first.ran_at and unchanged.modified_at == first.modified_at
    assert get_dataset(services, caller, dataset.id).row_count == 2

    # the source changes: the table is replaced, its id, privacy and attributes stay
    source.body += b"3,Nice,43.70,7.26\n"
    assert sweep(services, now=next(clock))["queued"] == 1
    changed = _settled(services, caller, created.id)
    assert changed.state == "success" and changed.modified_at and first.modified_at
    assert changed.modified_at > first.modified_at and changed.checksum != first.checksum
    after = get_dataset(services, caller, dataset.id)
    assert (after.id, after.name, after.row_count, after.privacy) == (dataset.id, "places", 3, "public")
    assert after.attributes.get("description") == "d"
    assert after.columns[:3] == ["cartodb_id", "the_geom", "the_geom_webmercator"]

    # listed; sync_now right after a run is refused by the minimum gap only
    views, total = list_syncs(services, caller)
    assert total == 1 and [v.id for v in views] == [created.id]
    deadline = time.monotonic() + 10
    while not sync_now(services, caller, created.id).enqueued:  # the 1 s gap passes
        assert time.monotonic() < deadline
        threading.Event().wait(0.1)
    assert sync_now(services, caller, created.id).enqueued is False  # one is queued already
    _settled(services, caller, created.id)

    # deleting the sync keeps the table; deleting the dataset deletes its sync
    delete_sync(services, caller, created.id)
    with pytest.raises(E.NotFound):
        get_sync(services, caller, created.id)
    assert get_dataset(services, caller, dataset.id).row_count == 3
    again = _settled(
        services, caller, create_sync(services, caller, SyncOptions(url=source.url, interval=60)).id
    )
    assert again.name == "places_1" and again.dataset_id
    delete_dataset(services, caller, again.dataset_id)
    with pytest.raises(E.NotFound):
        get_sync(services, caller, again.id)


def test_an_etag_source_is_asked_conditionally(
    services: Services, master: auth.Principal, source: Source
) -> None:
    services.start_workers(1)
    caller = Caller(master, "acme")
    source.etag = True
    sync = _settled(
        services, caller, create_sync(services, caller, SyncOptions(url=source.url, interval=60)).id
    )
    assert sync.etag == source.tag()
    sweep(services, now=utcnow() + timedelta(hours=1))
    skipped = _settled(services, caller, sync.id)
    assert (
        source.not_modified == 1 and skipped.modified_at == sync.modified_at and skipped.ran_at != sync.ran_at
    )


def test_failures_count_and_stop_after_the_retries(
    services: Services, master: auth.Principal, source: Source
) -> None:
    services.start_workers(1)
    caller = Caller(master, "acme")
    clock = _later()
    sync = _settled(
        services, caller, create_sync(services, caller, SyncOptions(url=source.url, interval=60)).id
    )
    source.status = 500
    for attempt in (1, 2, 3):
        assert sweep(services, now=next(clock))["queued"] == 1
        failed = _settled(services, caller, sync.id)
        assert failed.state == "failure" and failed.retried_times == attempt
        assert failed.error_code == "imports.downloadFailed" and "HTTP 500" in (failed.error_message or "")
    assert failed.run_at is None  # more than carto_sync_max_retries (2): no longer scheduled
    assert sweep(services, now=next(clock))["queued"] == 0
    # an update schedules it again; the source works again
    source.status = 200
    revived = update_sync(services, caller, sync.id, SyncChange(interval=120))
    assert revived.interval == 120 and revived.run_at is not None
    assert sweep(services, now=next(clock))["queued"] == 1
    ok = _settled(services, caller, sync.id)
    assert ok.state == "success" and ok.retried_times == 0 and ok.error_message is None


def test_a_revoked_key_fails_the_run_and_stops_the_schedule(
    services: Services, master: auth.Principal, source: Source
) -> None:
    services.start_workers(1)
    issued = auth.create_token(
        services.catalog, master.project_id or 0, auth.TokenSpec(bucket_permissions={"in.c-public": "write"})
    )
    writer = Caller(auth.authenticate(services.catalog, issued.token), "acme")
    reader = auth.create_token(
        services.catalog, master.project_id or 0, auth.TokenSpec(bucket_permissions={"in.c-public": "read"})
    )
    with pytest.raises(E.PermissionDenied):
        create_sync(
            services,
            Caller(auth.authenticate(services.catalog, reader.token), "acme"),
            SyncOptions(url=source.url, interval=60),
        )
    with pytest.raises(E.InvalidInput, match="greater than or equal to 1"):
        create_sync(services, writer, SyncOptions(url=source.url, interval=0))
    sync = _settled(
        services, writer, create_sync(services, writer, SyncOptions(url=source.url, interval=60)).id
    )
    assert sync.state == "success"
    master_caller = Caller(master, "acme")
    assert list_syncs(services, master_caller)[1] == 1  # a master sees every sync of the project
    auth.revoke_token(services.catalog, issued.row.id)
    assert sweep(services, now=utcnow() + timedelta(hours=1))["queued"] == 1
    failed = _settled(services, master_caller, sync.id)
    assert failed.state == "failure" and "revoked" in (failed.error_message or "")
    assert failed.run_at is None
    assert sweep(services, now=utcnow() + timedelta(hours=2))["queued"] == 0


def test_readers_see_the_old_table_or_the_new_one_never_a_gap(
    services: Services, master: auth.Principal, source: Source
) -> None:
    services.start_workers(1)
    caller = Caller(master, "acme")
    sync = _settled(
        services, caller, create_sync(services, caller, SyncOptions(url=source.url, interval=60)).id
    )
    count = f"SELECT count(*) FROM {TableRef('in.c-public', 'places').sql}"
    box = services.sql.sandbox("acme")
    seen: list[int] = []
    errors: list[Exception] = []
    stop = threading.Event()
    reading = threading.Event()

    def read() -> None:
        with box.cursor() as cur:
            while not stop.is_set():
                try:
                    seen.append(cur.execute(count).fetchall()[0][0])
                except duckdb.Error as exc:  # a missing or half-written table would land here
                    errors.append(exc)
                reading.set()
            seen.append(cur.execute(count).fetchall()[0][0])  # once more, after the run

    with box.cursor() as held:
        held.execute("BEGIN TRANSACTION")
        assert held.execute(count).fetchall() == [(2,)]
        reader = threading.Thread(target=read)
        reader.start()
        assert reading.wait(30)
        source.body += b"3,Nice,43.70,7.26\n4,Lille,50.63,3.06\n"
        assert sweep(services, now=utcnow() + timedelta(hours=1))["queued"] == 1
        done = _settled(services, caller, sync.id)
        stop.set()
        reader.join()
        assert done.state == "success" and done.modified_at != sync.modified_at
        assert held.execute(count).fetchall() == [(2,)]  # the open transaction keeps its snapshot
        held.execute("COMMIT")
        assert held.execute(count).fetchall() == [(4,)]
    assert errors == [] and set(seen) <= {2, 4} and seen and seen[-1] == 4
