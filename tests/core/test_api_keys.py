"""CARTO API keys in the core (on SQLite and PostgreSQL catalogs): a key is a hashed token with
grants, its principal carries them, and batch jobs are authorised when created and when run."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, select, text

from entrepot.core import api_keys as keys
from entrepot.core import errors as E
from entrepot.core.auth import Principal, authenticate
from entrepot.core.catalog import CartoApiKey, Token
from entrepot.core.jobs import FAILED, SUCCEEDED
from entrepot.core.jobs.worker import WorkerPool
from entrepot.core.services import Services
from entrepot.core.sql import service
from entrepot.core.sql.service import Caller


def _sql(services: Services, caller: Caller, q: str) -> list[dict]:
    with service.query(services, caller, service.Query(q)) as rows:
        names = [c.name for c in rows.columns]
        return [dict(zip(names, row, strict=True)) for batch in rows.batches for row in batch]


def _run_batch(services: Services) -> str:
    job = services.jobs.claim("w-test", ["sql.batch"])
    assert job is not None
    WorkerPool(services, 1)._execute(job, "w-test")  # not started: runs in this thread
    return services.jobs.get(job.id).status


@pytest.fixture
def owner(services: Services, master: Principal) -> Caller:
    admin = Caller(master, "acme")
    _sql(services, admin, "create table places (id int, name text)")
    _sql(services, admin, "insert into places values (1, 'a'), (2, 'b')")
    _sql(services, admin, "create table sink (name text)")
    return admin


def _key(services: Services, owner: Caller, name: str, tables: dict[str, tuple[str, ...]]) -> Caller:
    created = keys.create_key(
        services,
        owner,
        keys.KeySpec(
            name=name,
            apis=("sql",),
            tables=tuple(keys.TableGrant("acme", t, perms) for t, perms in tables.items()),
        ),
    )
    assert created.token is not None
    return Caller(authenticate(services.catalog, created.token), "acme", created.token)


def test_the_migration_makes_the_keys_table(services: Services) -> None:
    with services.catalog.session(readonly=True) as s:
        names = inspect(s.get_bind()).get_table_names()
        assert "carto_api_keys" in names
        assert s.scalar(text("select count(*) from carto_api_keys")) == 0


def test_a_key_is_a_hashed_token_whose_principal_carries_its_grants(services, owner) -> None:  # type: ignore[no-untyped-def]
    reader = _key(services, owner, "reader", {"places": ("select",)})
    assert reader.principal.api_key_name == "reader"
    assert reader.principal.apis == frozenset({"sql"})
    assert reader.principal.table_permits("in.c-public", "PLACES", "select")
    assert not reader.principal.table_permits("in.c-public", "places", "insert")
    assert reader.principal.table_access("in.c-public", "places") == "read"
    assert reader.principal.table_access("in.c-public", "sink") is None
    with services.catalog.session(readonly=True) as s:
        row = s.scalar(select(CartoApiKey).where(CartoApiKey.name == "reader"))
        assert row is not None
        token = s.get(Token, row.token_id)
        assert token is not None and reader.key is not None
        assert token.secret_hash != reader.key and reader.key.split("-")[-1] not in token.secret_hash
    assert _sql(services, reader, "select count(*) as n from places") == [{"n": 2}]
    with pytest.raises(E.PermissionDenied, match="permission denied for table sink"):
        _sql(services, reader, "select * from sink")
    with pytest.raises(E.PermissionDenied, match="permission denied for table places"):
        _sql(services, reader, "insert into places values (3, 'c')")
    assert _sql(services, owner, "select count(*) as n from places") == [{"n": 2}]
    # deleting the key revokes its token
    keys.delete_key(services, owner, "reader")
    with pytest.raises(E.Unauthenticated):
        authenticate(services.catalog, reader.key)


def test_names_and_grants_are_validated(services, owner) -> None:  # type: ignore[no-untyped-def]
    _key(services, owner, "k", {"places": ("select",)})
    with pytest.raises(E.AlreadyExists, match="Name has already been taken"):
        _key(services, owner, "k", {"places": ("select",)})
    with pytest.raises(E.InvalidInput, match="not one"):
        _key(services, owner, "k2", {"nosuchtable": ("select",)})
    with pytest.raises(E.InvalidInput, match="truncate"):
        _key(services, owner, "k3", {"places": ("truncate",)})
    bad = keys.KeySpec(name="k4", apis=("sql",), tables=(keys.TableGrant(None, None, None),))
    with pytest.raises(E.InvalidInput, match="null"):
        keys.create_key(services, owner, bad)
    with pytest.raises(E.InvalidInput, match="reserved"):
        keys.create_key(services, owner, keys.KeySpec(name="Master", apis=("sql",)))
    names = [k.name for k in keys.list_keys(services, owner, keys.KeyFilter()).keys]
    assert names == ["Master", "Default public", "k"]


def test_batch_jobs_are_authorised_when_created_and_when_they_run(services, owner) -> None:  # type: ignore[no-untyped-def]
    writer = _key(services, owner, "writer", {"sink": ("insert",)})
    # refused when created: nothing is queued
    with pytest.raises(E.PermissionDenied, match="permission denied for table places"):
        service.create_batch(services, writer, "delete from places")
    assert services.jobs.claim("w-test", ["sql.batch"]) is None

    # allowed: the public table is readable by any key when the job is created...
    service.set_table_privacy(services, owner, service.TablePrivacy("places", "public"))
    service.create_batch(services, writer, "insert into sink select name from places")
    # ...but private again by the time the job runs: the run refuses it
    service.set_table_privacy(services, owner, service.TablePrivacy("places", "private"))
    assert _run_batch(services) == FAILED
    assert _sql(services, owner, "select count(*) as n from sink") == [{"n": 0}]

    service.set_table_privacy(services, owner, service.TablePrivacy("places", "link"))
    service.create_batch(services, writer, "insert into sink select name from places")
    assert _run_batch(services) == SUCCEEDED
    assert _sql(services, owner, "select count(*) as n from sink") == [{"n": 2}]

    # a key deleted after queueing its job: the job runs with no permissions
    service.create_batch(services, writer, "insert into sink select name from places")
    keys.delete_key(services, owner, "writer")
    assert _run_batch(services) == FAILED
    assert _sql(services, owner, "select count(*) as n from sink") == [{"n": 2}]
