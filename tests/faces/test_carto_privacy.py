"""Table privacy: anonymous (default_public) SQL reads public and link tables only."""

from __future__ import annotations

import pytest
import requests

from entrepot.client import Client, InvalidRequest, PermissionDenied


def _anon(server, q: str) -> requests.Response:  # type: ignore[no-untyped-def]
    return requests.get(f"{server.url}/user/default/api/v2/sql", params={"q": q, "api_key": "default_public"})


def test_privacy_decides_what_anonymous_sql_reads(server) -> None:  # type: ignore[no-untyped-def]
    client = Client(server.url, server.token)
    client.sql.query("create table shared_places (name text)")
    client.sql.query("insert into shared_places values ('a'), ('b')")
    assert client.sql.privacy("shared_places") == "private"
    r = _anon(server, "select count(*) as n from shared_places")
    assert r.status_code == 403 and "permission denied" in r.json()["error"][0]

    for privacy in ("public", "link"):
        client.sql.set_privacy("shared_places", privacy)
        assert client.sql.privacy("in.c-public.shared_places") == privacy
        r = _anon(server, "select count(*) as n from shared_places")
        assert r.status_code == 200 and r.json()["rows"] == [{"n": 2}]
        # anonymous callers still may not write
        r = _anon(server, "delete from shared_places")
        assert r.status_code == 403
    assert client.sql.query("select count(*) as n from shared_places").rows == [{"n": 2}]

    client.sql.set_privacy("shared_places", "private")
    assert _anon(server, "select * from shared_places").status_code == 403


def test_privacy_changes_need_write_access_and_a_valid_value(server) -> None:  # type: ignore[no-untyped-def]
    client = Client(server.url, server.token)
    client.sql.query("create table guarded (a int)")
    reader = Client(server.url, server.token_for(bucket_permissions={"in.c-public": "read"}))
    assert reader.sql.privacy("guarded") == "private"
    with pytest.raises(PermissionDenied):
        reader.sql.set_privacy("guarded", "public")
    with pytest.raises(InvalidRequest, match="private, public, link"):
        client.sql.set_privacy("guarded", "everyone")
    assert client.sql.privacy("guarded") == "private"
