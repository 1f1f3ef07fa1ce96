"""CARTO's Auth API (``api/v3/api_keys``, ``api/v3/me``) through the official ``carto`` SDK, unmodified,
on ``/user/<project>/`` and on the ``<project>.<host>`` form, and the grants enforced on every
SQL path: sync queries, batch jobs, COPY FROM and COPY TO."""

from __future__ import annotations

import socket
import warnings
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from sqlalchemy import inspect, select, text

from support.jobs import wait_kbc_job
from support.server import RunningServer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pkg_resources deprecation inside carto.auth
    from carto.api_keys import APIKeyManager
    from carto.auth import APIKeyAuthClient, AuthAPIClient
    from carto.exceptions import CartoException
    from carto.sql import BatchSQLClient, CopySQLClient, SQLClient
    from pyrestcli.exceptions import (
        ForbiddenErrorException,
        NotFoundException,
        UnauthorizedErrorException,
        UnprocessableEntityError,
    )

pytestmark = pytest.mark.filterwarnings("ignore")


def _auth(base: str, token: str) -> APIKeyAuthClient:
    return APIKeyAuthClient(api_key=token, base_url=base)


@pytest.fixture(scope="module")
def base(server: RunningServer) -> str:
    return f"{server.url}/user/default/"


@pytest.fixture
def subdomain(server: RunningServer, monkeypatch: pytest.MonkeyPatch) -> str:
    """``http://default.localhost:<port>/``: ``*.localhost`` resolves to the loopback (RFC 6761)."""
    real = socket.getaddrinfo

    def resolve(host: Any, *args: Any, **kwargs: Any) -> Any:
        if isinstance(host, str) and host.endswith(".localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolve)
    return f"http://default.localhost:{server.url.rsplit(':', 1)[1]}/"


@pytest.fixture(scope="module")
def manager(server: RunningServer, base: str) -> APIKeyManager:
    return APIKeyManager(_auth(base, server.token))


@pytest.fixture(scope="module")
def tornados(server: RunningServer, base: str) -> str:
    sql = SQLClient(_auth(base, server.token))
    sql.send("CREATE TABLE tornados (the_geom geometry(Geometry,4326), name text, magnitude integer)")
    sql.send("INSERT INTO tornados (name, magnitude) VALUES ('moore', 5), ('tulsa', 3)")
    return "tornados"


def _sql(base: str, token: str | None, q: str, **params: Any) -> requests.Response:
    return requests.post(f"{base}api/v2/sql", data={"q": q, **params}, params={"api_key": token or ""})


def _count(server: RunningServer, base: str, table: str) -> list[Any]:
    return SQLClient(_auth(base, server.token)).send(f"select * from {table} order by id")["rows"]


# -- the SDK's API key calls ---------------------------------------------------------------------


def test_create_get_and_delete_a_regular_key(manager: APIKeyManager, tornados: str) -> None:
    key = manager.create(name="sdk_regular", apis=["sql", "maps"])
    assert key.type == "regular" and key.token
    got = manager.get("sdk_regular")
    assert got.type == "regular"
    assert got.grants.apis == ["sql", "maps"]
    assert got.grants.tables == []
    key.delete()
    with pytest.raises(NotFoundException) as exc:
        manager.get("sdk_regular")
    assert "API key not found" in str(exc.value)


def test_create_a_key_with_table_grants(manager: APIKeyManager, tornados: str) -> None:
    tables = [{"schema": "default", "name": tornados, "permissions": ["insert", "select", "update"]}]
    key = manager.create(name="sdk_tables", apis=["sql"], tables=tables)
    got = manager.get("sdk_tables")
    assert [(t.schema, t.name, t.permissions) for t in got.grants.tables] == [
        ("default", tornados, ["insert", "select", "update"])
    ]
    assert got.grants.apis == ["sql"]
    key.delete()


def test_regenerate_token(server: RunningServer, manager: APIKeyManager, base: str, tornados: str) -> None:
    key = manager.create(
        name="sdk_regen",
        apis=["sql"],
        tables=[{"schema": "public", "name": tornados, "permissions": ["select"]}],
    )
    old = key.token
    assert _sql(base, old, f"select count(*) as n from {tornados}").json()["rows"] == [{"n": 2}]
    key.regenerate_token()
    assert key.token != old
    assert _sql(base, old, "select 1").status_code == 401
    assert _sql(base, key.token, f"select count(*) as n from {tornados}").json()["rows"] == [{"n": 2}]
    key.delete()


def test_invalid_and_duplicate_keys_are_422(server: RunningServer, manager: APIKeyManager, base: str) -> None:
    with pytest.raises(UnprocessableEntityError):
        manager.create(name="sdk_bad", apis=["sql"], tables=[{"t": "pra"}])  # nulls, as in the SDK suite
    key = manager.create(name="sdk_dup", apis=["sql"])
    with pytest.raises(UnprocessableEntityError):
        manager.create(name="sdk_dup", apis=["sql"])
    url = f"{base}api/v3/api_keys/"
    r = requests.post(
        url, json={"name": "sdk_dup", "grants": [{"type": "apis", "apis": ["sql"]}], "api_key": server.token}
    )
    assert r.status_code == 422 and r.json() == {
        "errors": "Validation failed: Name has already been taken",
        "errors_cause": None,
    }
    grant = {
        "type": "database",
        "tables": [{"schema": "public", "name": "not_mine", "permissions": ["select"]}],
    }
    r = requests.post(
        url, json={"name": "x", "grants": [{"type": "apis", "apis": ["sql"]}, grant], "api_key": server.token}
    )
    assert r.status_code == 422 and "not_mine" in r.json()["errors"]
    r = requests.post(
        url, json={"name": "x", "grants": [{"type": "apis", "apis": ["ftp"]}], "api_key": server.token}
    )
    assert r.status_code == 422
    r = requests.get(url, params={"type": "superuser", "api_key": server.token})
    assert r.status_code == 400 and "Invalid type" in r.json()["errors"]
    key.delete()
    assert [k.name for k in manager.all()] == ["Master", "Default public"]


def test_master_and_default_keys(server: RunningServer, manager: APIKeyManager, base: str) -> None:
    assert len(manager.all()) >= 2
    masters = manager.filter(type="master")
    assert [(k.name, k.token) for k in masters] == [("Master", server.token)]
    defaults = manager.filter(type="default")
    assert [(k.name, k.token) for k in defaults] == [("Default public", "default_public")]
    assert {k.type for k in manager.filter(type="default,master")} == {"default", "master"}
    for name in ("Master", "Default public"):
        r = requests.delete(f"{base}api/v3/api_keys/{name}", params={"api_key": server.token})
        assert r.status_code == 403, r.text
    assert len(manager.filter(type="default,master")) == 2


def test_pages_and_links(server: RunningServer, manager: APIKeyManager, base: str) -> None:
    made = [manager.create(name=f"sdk_page_{i:02d}", apis=["maps"]) for i in range(11)]
    # the SDK's paginator walks every page of the default size (10)
    assert len(manager.filter(type="regular")) == 11
    assert len(manager.all()) == 13
    r = requests.get(f"{base}api/v3/api_keys", params={"per_page": 5, "page": 2, "api_key": server.token})
    body = r.json()
    assert (body["total"], body["count"]) == (13, 5)
    assert [k["name"] for k in body["result"]] == [f"sdk_page_{i:02d}" for i in range(3, 8)]
    assert set(body["_links"]) == {"first", "last", "next", "prev"}
    assert "page=3" in body["_links"]["next"]["href"] and "per_page=5" in body["_links"]["next"]["href"]
    assert "api_key=" not in body["_links"]["last"]["href"] and "page=3" in body["_links"]["last"]["href"]
    for key in made:
        key.delete()


def test_a_non_master_key_sees_only_itself(server: RunningServer, manager: APIKeyManager, base: str) -> None:
    key = manager.create(name="sdk_self", apis=["sql"])
    own = APIKeyManager(_auth(base, key.token)).all()
    assert [(k.name, k.token) for k in own] == [("sdk_self", key.token)]
    public = APIKeyManager(_auth(base, "default_public")).all()
    assert [(k.name, k.token) for k in public] == [("Default public", "default_public")]
    # neither may create, regenerate or delete keys
    for token in (key.token, "default_public"):
        with pytest.raises((ForbiddenErrorException, UnauthorizedErrorException)):
            APIKeyManager(_auth(base, token)).create(name="sdk_other", apis=["sql"])
        r = requests.delete(f"{base}api/v3/api_keys/sdk_self", params={"api_key": token})
        assert r.status_code in (401, 403)
    key.delete()


def test_is_valid_api_key_and_me_on_both_url_forms(
    server: RunningServer, manager: APIKeyManager, base: str, subdomain: str
) -> None:
    key = manager.create(name="sdk_valid", apis=["sql"])
    for url in (base, subdomain):
        assert AuthAPIClient(url, server.token).is_valid_api_key()
        assert AuthAPIClient(url, key.token).is_valid_api_key()
        assert AuthAPIClient(url, "default_public").is_valid_api_key()
        assert not AuthAPIClient(url, "1-1-" + "x" * 40).is_valid_api_key()
        me = _auth(url, server.token).send("api/v3/me", "get").json()
        assert me["config"]["user_name"] == "default" and me["user_data"]["username"] == "default"
        anonymous = requests.get(f"{url}api/v3/me").json()
        assert anonymous["config"]["user_name"] == "default" and "user_data" not in anonymous
        # the SDK manager works on this form too
        assert [k.name for k in APIKeyManager(_auth(url, server.token)).filter(type="master")] == ["Master"]
    # the SDK suite's root-relative call: the project comes from the key
    assert _auth(base, server.token).send("/api/v3/me", "get").json()["config"]["user_name"] == "default"
    key.delete()


def test_tokens_are_stored_hashed(server: RunningServer, manager: APIKeyManager) -> None:
    key = manager.create(name="sdk_hashed", apis=["sql"])
    secret = key.token.rsplit("-", 1)[1]
    with server.services.catalog.session(readonly=True) as s:
        dump = []
        for table in inspect(s.get_bind()).get_table_names():
            dump += [repr(tuple(row)) for row in s.execute(text(f'select * from "{table}"'))]
    text_dump = "\n".join(dump)
    assert "sdk_hashed" in text_dump
    assert secret not in text_dump and key.token not in text_dump
    key.delete()


def test_keboola_sees_the_grants(server: RunningServer, manager: APIKeyManager, tornados: str) -> None:
    SQLClient(_auth(f"{server.url}/user/default/", server.token)).send("create table kbc_hidden (a int)")
    key = manager.create(
        name="sdk_kbc",
        apis=["sql"],
        tables=[{"schema": "public", "name": tornados, "permissions": ["select"]}],
    )
    headers = {"X-StorageApi-Token": key.token}
    api = f"{server.url}/v2/storage"
    r = requests.get(f"{api}/tables/in.c-public.{tornados}", headers=headers)
    assert r.status_code == 200, r.text
    assert [t["id"] for t in requests.get(f"{api}/tables", headers=headers).json()] == [
        f"in.c-public.{tornados}"
    ]
    assert requests.get(f"{api}/tables/in.c-public.kbc_hidden", headers=headers).status_code in (403, 404)
    # Keboola's writes replace whole tables: a grant does not give them
    r = requests.delete(f"{api}/tables/in.c-public.{tornados}", headers=headers)
    assert r.status_code in (403, 404), r.text
    key.delete()


# -- the grant matrix ----------------------------------------------------------------------------

ROWS = [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]
STATEMENTS = {
    "select": "select count(*) as n from {t}",
    "insert": "insert into {t} (id, name) values (3, 'c')",
    "update": "update {t} set name = 'z'",
    "delete": "delete from {t}",
}
AFTER = {
    "select": ROWS,
    "insert": [*ROWS, {"id": 3, "name": "c"}],
    "update": [{"id": 1, "name": "z"}, {"id": 2, "name": "z"}],
    "delete": [],
}
PATHS = {"sync": ("select", "insert", "update", "delete"), "batch": ("select", "insert", "update", "delete"),
         "copyfrom": ("insert",), "copyto": ("select",)}  # fmt: skip
CASES = [(path, op) for path, ops in PATHS.items() for op in ops]
_n = iter(range(1_000_000))


@pytest.fixture
def table(server: RunningServer, base: str) -> Iterator[str]:
    name = f"matrix_{next(_n)}"
    sql = SQLClient(_auth(base, server.token))
    sql.send(f"create table {name} (id integer, name text)")
    sql.send(f"insert into {name} values (1, 'a'), (2, 'b')")
    yield name


def _grant(manager: APIKeyManager, table: str, permissions: list[str], apis: list[str] | None = None) -> str:
    name = f"matrix_key_{next(_n)}"
    grant = [{"schema": "public", "name": table, "permissions": permissions}]
    return str(manager.create(name=name, apis=apis or ["sql"], tables=grant).token)


def _do(server: RunningServer, base: str, path: str, op: str, table: str, token: str) -> tuple[int, str]:
    """Run ``op`` on ``table`` by ``path`` with ``token``: (HTTP status, body or job outcome)."""
    if path == "sync":
        r = _sql(base, token, STATEMENTS[op].format(t=table))
        return r.status_code, r.text
    if path == "batch":
        r = requests.post(
            f"{base}api/v2/sql/job", json={"query": STATEMENTS[op].format(t=table), "api_key": token}
        )
        if r.status_code != 201:
            return r.status_code, r.text
        job = wait_kbc_job(server, int(r.json()["job_id"]))
        return (200 if job["status"] == "success" else 400), str(job)
    if path == "copyfrom":
        r = requests.post(
            f"{base}api/v2/sql/copyfrom",
            params={"q": f"COPY {table} (id, name) FROM STDIN WITH (FORMAT csv)", "api_key": token},
            data=b"3,c\n",
        )
        return r.status_code, r.text
    r = requests.get(
        f"{base}api/v2/sql/copyto", params={"q": f"COPY (select * from {table}) TO STDOUT", "api_key": token}
    )
    return r.status_code, r.text


@pytest.mark.parametrize(("path", "op"), CASES)
def test_a_granted_permission_is_allowed(server, base, manager, table, path, op) -> None:  # type: ignore[no-untyped-def]
    token = _grant(manager, table, [op])
    status, body = _do(server, base, path, op, table, token)
    assert status == 200, body
    if path == "copyto":
        assert body == "1\ta\n2\tb\n"
    assert _count(server, base, table) == AFTER[op]


@pytest.mark.parametrize(("path", "op"), CASES)
def test_a_missing_permission_is_refused_and_nothing_changes(server, base, manager, table, path, op) -> None:  # type: ignore[no-untyped-def]
    others = [p for p in ("select", "insert", "update", "delete") if p != op]
    token = _grant(manager, table, others)
    status, body = _do(server, base, path, op, table, token)
    assert status == 403, body
    assert f"permission denied for table {table}" in body
    assert _count(server, base, table) == ROWS


@pytest.mark.parametrize("path", list(PATHS))
def test_a_key_without_the_sql_api_is_refused(server, base, manager, table, path) -> None:  # type: ignore[no-untyped-def]
    token = _grant(manager, table, ["select", "insert", "update", "delete"], apis=["maps"])
    op = PATHS[path][-1]
    status, body = _do(server, base, path, op, table, token)
    assert status == 403, body
    assert "permission denied" in body
    assert _count(server, base, table) == ROWS


def test_a_write_that_reads_its_target_needs_select(server, base, manager, table) -> None:  # type: ignore[no-untyped-def]
    token = _grant(manager, table, ["update", "delete"])
    for q in (f"update {table} set name = 'z' where id = 1", f"delete from {table} where name = 'a'",
              f"update {table} set name = name || 'x'"):  # fmt: skip
        r = _sql(base, token, q)
        assert r.status_code == 403 and f"permission denied for table {table}" in r.json()["error"][0], r.text
    assert _count(server, base, table) == ROWS
    token = _grant(manager, table, ["select", "update"])
    assert _sql(base, token, f"update {table} set name = 'z' where id = 1").status_code == 200
    assert _count(server, base, table) == [{"id": 1, "name": "z"}, ROWS[1]]


def test_keys_read_public_tables_and_the_sdk_clients_use_grants(server, base, manager, table) -> None:  # type: ignore[no-untyped-def]
    token = _grant(manager, table, ["insert"])
    SQLClient(_auth(base, server.token)).send("create table matrix_public (a int)")
    requests.put(
        f"{base}api/v2/sql/tables/matrix_public/privacy", data={"privacy": "public", "api_key": server.token}
    )
    assert SQLClient(_auth(base, token)).send("select count(*) as n from matrix_public")["rows"] == [{"n": 0}]
    with pytest.raises(CartoException):
        SQLClient(_auth(base, token)).send("insert into matrix_public values (1)")
    assert (
        CopySQLClient(_auth(base, token)).copyfrom(
            f"COPY {table} (id, name) FROM STDIN WITH (FORMAT csv)", iter([b"3,c\n"])
        )["total_rows"]
        == 1
    )
    with pytest.raises(CartoException):
        CopySQLClient(_auth(base, token)).copyto(f"COPY (select * from {table}) TO STDOUT")
    with pytest.raises(CartoException):
        BatchSQLClient(_auth(base, token)).create(f"delete from {table}")
    assert len(_count(server, base, table)) == 3
    with server.services.catalog.session(readonly=True) as s:
        assert s.scalar(select(text("count(*)")).select_from(text("carto_api_keys"))) >= 1


# -- a key owns the tables it creates --------------------------------------------------------------


def _creator(base: str, master: str) -> str:
    """A new key with the SQL API and a ``create`` grant on the default schema, and no table grant."""
    r = requests.post(
        f"{base}api/v3/api_keys/",
        json={
            "name": f"creator_{next(_n)}",
            "grants": [
                {"type": "apis", "apis": ["sql"]},
                {
                    "type": "database",
                    "tables": [],
                    "schemas": [{"name": "public", "permissions": ["create"]}],
                },
            ],
            "api_key": master,
        },
    )
    assert r.status_code == 201, r.text
    return str(r.json()["token"])


def _granted(base: str, token: str) -> list[tuple[str, list[str]]]:
    """The table grants a key's own JSON lists: (name, permissions)."""
    keys = requests.get(f"{base}api/v3/api_keys/", params={"api_key": token}).json()["result"]
    return [(t["name"], t["permissions"]) for t in keys[0]["grants"][1]["tables"]]


def test_a_key_owns_the_tables_it_creates(server: RunningServer, base: str) -> None:
    creator = _creator(base, server.token)
    name = f"owned_{next(_n)}"
    # one script: the table it creates is the key's for its later statements
    r = _sql(
        base, creator, f"create table {name} (id integer, name text); insert into {name} values (1, 'a')"
    )
    assert r.status_code == 200, r.text
    # later requests: every permission, and the DDL an owner may run
    for q in (f"insert into {name} values (2, 'b')", f"update {name} set name = 'z' where id = 2",
              f"delete from {name} where id = 1", f"alter table {name} add column extra integer"):  # fmt: skip
        assert _sql(base, creator, q).status_code == 200, q
    assert _sql(base, creator, f"select id, name, extra from {name}").json()["rows"] == [
        {"id": 2, "name": "z", "extra": None}
    ]
    assert _granted(base, creator) == [(name, ["select", "insert", "update", "delete"])]
    # another key with the same create grant does not own it
    other = _creator(base, server.token)
    r = _sql(base, other, f"select * from {name}")
    assert r.status_code == 403 and f"permission denied for table {name}" in r.text
    assert _sql(base, other, f"drop table {name}").status_code == 403
    # a rename keeps the ownership and the key's JSON follows it
    renamed = f"{name}_renamed"
    assert _sql(base, creator, f"alter table {name} rename to {renamed}").status_code == 200
    assert _sql(base, creator, f"select count(*) as n from {renamed}").json()["rows"] == [{"n": 1}]
    assert _granted(base, creator) == [(renamed, ["select", "insert", "update", "delete"])]
    # a drop ends it: a new table of the same name, made by the master key, is not the key's
    assert _sql(base, creator, f"drop table {renamed}").status_code == 200
    assert _sql(base, server.token, f"create table {renamed} (secret text)").status_code == 200
    r = _sql(base, creator, f"select * from {renamed}")
    assert r.status_code == 403, r.text
    assert _granted(base, creator) == []


def test_create_if_not_exists_does_not_take_someone_elses_table(server, base, table) -> None:  # type: ignore[no-untyped-def]
    creator = _creator(base, server.token)
    r = _sql(base, creator, f"create table if not exists {table} (id integer); drop table {table}")
    assert r.status_code == 403 and f"permission denied for table {table}" in r.text
    assert _sql(base, creator, f"create table if not exists {table} (id integer)").status_code == 200
    assert _sql(base, creator, f"select * from {table}").status_code == 403
    assert _granted(base, creator) == []
    assert _count(server, base, table) == ROWS


def test_a_batch_job_creates_a_table_then_writes_it(server: RunningServer, base: str) -> None:
    creator = _creator(base, server.token)
    name = f"batch_owned_{next(_n)}"
    queries = [f"create table {name} (id integer)", f"insert into {name} values (1), (2)",
               f"update {name} set id = id * 10"]  # fmt: skip
    r = requests.post(f"{base}api/v2/sql/job", json={"query": queries, "api_key": creator})
    assert r.status_code == 201, r.text
    job = wait_kbc_job(server, int(r.json()["job_id"]))
    assert job["status"] == "success", job
    assert _sql(base, creator, f"select id from {name} order by id").json()["rows"] == [
        {"id": 10},
        {"id": 20},
    ]
    # a job that writes a table no query of it creates is still refused when it is queued
    r = requests.post(
        f"{base}api/v2/sql/job", json={"query": [f"create table {name}_b (id integer)", f"delete from {name}_x"],
                                       "api_key": creator},
    )  # fmt: skip
    assert r.status_code in (400, 403), r.text
