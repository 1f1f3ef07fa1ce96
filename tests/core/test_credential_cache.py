"""The S3 credential cache (``access_keys.use``): a key is read from the catalog once per
``s3_credential_cache_ttl``, and forgotten at once when this process changes the key, its token
or its project; another process sees such a change when the entry expires."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import event, update

from entrepot.config import Settings
from entrepot.core import access_keys, auth
from entrepot.core.auth import TokenSpec
from entrepot.core.catalog import Catalog, Project, Token
from entrepot.core.clock import utcnow
from entrepot.core.errors import Unauthenticated
from entrepot.core.projects import create_project
from entrepot.core.s3_credentials import cached, resolve
from entrepot.core.services import Services


@pytest.fixture
def settings(tmp_path, catalog_url):
    # a lifetime no test outlives: an entry only goes because of what the test does
    return Settings(data_dir=tmp_path, catalog_url=catalog_url, s3_credential_cache_ttl=300)


@contextmanager
def key_reads(catalog: Catalog) -> Iterator[list[str]]:
    """The statements on the access keys' table run meanwhile."""
    seen: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "s3_access_keys" in statement:
            seen.append(statement)

    event.listen(catalog.engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(catalog.engine, "before_cursor_execute", record)


def token_of(services: Services, master: auth.Principal, **spec: Any) -> auth.Principal:
    issued = auth.create_token(services.catalog, master.project_id or 0, TokenSpec(**spec), creator=master)
    return auth.authenticate(services.catalog, issued.token)


def refused(services: Services, access_key_id: str) -> str:
    with pytest.raises(Unauthenticated) as caught:
        resolve(services, access_key_id, None)
    return caught.value.code


def test_a_key_is_read_once_then_answered_from_memory(services, master):
    key = access_keys.create(services, master)
    assert cached(services, key.access_key_id, None) is None
    with key_reads(services.catalog) as reads:
        first = resolve(services, key.access_key_id, None)
    assert reads  # read (and its last use recorded: that write does not evict it)
    with key_reads(services.catalog) as reads:
        again = [resolve(services, key.access_key_id, None) for _ in range(5)]
        held = cached(services, key.access_key_id, None)
    assert reads == []
    assert all(c == first for c in again) and held == first
    assert held is not None and held.secret_access_key == key.secret_access_key
    assert cached(services, key.access_key_id, "a session token") is None  # never with one


def test_revoking_the_key_refuses_the_next_request_at_once(services, master):
    key = access_keys.create(services, master)
    resolve(services, key.access_key_id, None)
    assert cached(services, key.access_key_id, None) is not None
    access_keys.revoke(services, master, key.access_key_id)
    assert cached(services, key.access_key_id, None) is None
    assert refused(services, key.access_key_id) == "s3.invalidAccessKeyId"


def test_revoking_the_token_refuses_its_keys_at_once_and_spares_the_others(services, master):
    plain = token_of(services, master, description="plain")
    doomed = access_keys.create(services, plain)
    kept = access_keys.create(services, master)
    for key in (doomed, kept):
        resolve(services, key.access_key_id, None)
    auth.revoke_token(services.catalog, plain.token_id or 0, master)
    assert refused(services, doomed.access_key_id) == "s3.invalidAccessKeyId"
    with key_reads(services.catalog) as reads:
        assert resolve(services, kept.access_key_id, None).principal == master
    assert reads == []  # another token's key stayed in memory


def test_a_changed_token_or_a_disabled_project_is_seen_at_once(services, master):
    reader = token_of(services, master, space_permissions={"private": "read"})
    key = access_keys.create(services, reader)
    assert resolve(services, key.access_key_id, None).principal.space_access("private") == "read"
    with services.catalog.session() as s:
        token = s.get(Token, reader.token_id)
        assert token is not None
        token.space_permissions = {"private": "write"}
    assert resolve(services, key.access_key_id, None).principal.space_access("private") == "write"

    with services.catalog.session() as s:
        project = s.get(Project, master.project_id)
        assert project is not None
        project.disabled = True
    assert refused(services, key.access_key_id) == "s3.invalidAccessKeyId"


def test_a_bulk_update_forgets_every_key(services, master):
    key = access_keys.create(services, master)
    resolve(services, key.access_key_id, None)
    with services.catalog.session() as s:
        s.execute(update(Token).where(Token.id == master.token_id).values(revoked_at=utcnow()))
    assert refused(services, key.access_key_id) == "s3.invalidAccessKeyId"


def test_an_entry_never_outlives_the_keys_expiry(services, master, monkeypatch):
    key = access_keys.create(services, master, expires_in=60)
    resolve(services, key.access_key_id, None)
    assert cached(services, key.access_key_id, None) is not None
    later = utcnow() + timedelta(seconds=61)
    monkeypatch.setattr(access_keys, "utcnow", lambda: later)
    assert cached(services, key.access_key_id, None) is None
    with pytest.raises(Unauthenticated, match="expired"):
        resolve(services, key.access_key_id, None)


def test_an_answer_read_while_a_revocation_committed_is_not_kept(services, master, monkeypatch):
    key = access_keys.create(services, master)
    read = access_keys._resolve

    def racing(services: Services, access_key_id: str, ttl: float):  # type: ignore[no-untyped-def]
        answer = read(services, access_key_id, ttl)  # read before the revocation committed...
        access_keys.revoke(services, master, access_key_id)  # ...which commits before it is stored
        return answer

    monkeypatch.setattr(access_keys, "_resolve", racing)
    assert resolve(services, key.access_key_id, None).access_key_id == key.access_key_id  # it raced
    monkeypatch.setattr(access_keys, "_resolve", read)
    assert cached(services, key.access_key_id, None) is None
    assert refused(services, key.access_key_id) == "s3.invalidAccessKeyId"


def test_another_process_sees_a_revocation_when_the_entry_expires(services, master, monkeypatch):
    """``other`` is a second server on the same catalog: its own catalog connection, its own memory."""
    now = [1000.0]
    monkeypatch.setattr(access_keys, "_monotonic", lambda: now[0])
    other = Services(services.settings, Catalog(services.settings.effective_catalog_url))
    try:
        key = access_keys.create(services, master)
        resolve(other, key.access_key_id, None)
        access_keys.revoke(services, master, key.access_key_id)  # through this process
        assert refused(services, key.access_key_id) == "s3.invalidAccessKeyId"
        now[0] += services.settings.s3_credential_cache_ttl - 1
        assert resolve(other, key.access_key_id, None).access_key_id == key.access_key_id  # still held
        now[0] += 1
        assert refused(other, key.access_key_id) == "s3.invalidAccessKeyId"  # expired: read again
    finally:
        other.catalog.dispose()


def test_without_a_lifetime_every_request_reads_the_key(tmp_path, catalog_url):
    services = Services.open(Settings(data_dir=tmp_path, catalog_url=catalog_url, s3_credential_cache_ttl=0))
    try:
        master = auth.authenticate(services.catalog, create_project(services.catalog, "acme").master.token)
        key = access_keys.create(services, master)
        resolve(services, key.access_key_id, None)
        with key_reads(services.catalog) as reads:
            resolve(services, key.access_key_id, None)
        assert reads and cached(services, key.access_key_id, None) is None
    finally:
        services.close()


def test_the_last_use_is_written_at_most_once_a_touch_interval(services, master, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(access_keys, "_monotonic", lambda: now[0])
    key = access_keys.create(services, master)
    with key_reads(services.catalog) as reads:
        resolve(services, key.access_key_id, None)
    assert any(r.lstrip().upper().startswith("UPDATE") for r in reads)  # the first use is recorded
    [first] = [k.last_used_at for k in access_keys.list_keys(services, master)]
    assert first is not None

    now[0] += services.settings.s3_credential_cache_ttl  # the entry expired: the key is read again
    with key_reads(services.catalog) as reads:
        resolve(services, key.access_key_id, None)
    assert reads and not any(r.lstrip().upper().startswith("UPDATE") for r in reads)  # but not written

    later = utcnow() + timedelta(seconds=services.settings.token_touch_interval)
    monkeypatch.setattr(access_keys, "utcnow", lambda: later)
    now[0] += services.settings.s3_credential_cache_ttl
    with key_reads(services.catalog) as reads:
        resolve(services, key.access_key_id, None)
    assert any(r.lstrip().upper().startswith("UPDATE") for r in reads)  # a touch interval later: written
    assert [k.last_used_at for k in access_keys.list_keys(services, master)] == [later]
