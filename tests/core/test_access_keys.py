"""S3 access keys: created for a token, sealed at rest, resolved on every request, revoked at once."""

from __future__ import annotations

import logging
import re
from datetime import timedelta

import pytest
from sqlalchemy import select

from entrepot.config import Settings
from entrepot.core import access_keys, auth
from entrepot.core.auth import TokenSpec
from entrepot.core.catalog import Project, S3AccessKey, Token
from entrepot.core.clock import utcnow
from entrepot.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from entrepot.core.projects import create_project
from entrepot.core.s3_credentials import resolve
from entrepot.core.services import Services
from support.rotation import rotated


@pytest.fixture
def settings(tmp_path, catalog_url):
    return Settings(
        data_dir=tmp_path, catalog_url=catalog_url, secret_key="first-secret", s3_max_keys_per_token=3
    )


def token_of(services: Services, master: auth.Principal, **spec) -> auth.Principal:  # type: ignore[no-untyped-def]
    issued = auth.create_token(services.catalog, master.project_id or 0, TokenSpec(**spec), creator=master)
    return auth.authenticate(services.catalog, issued.token)


def row_of(services: Services, access_key_id: str) -> S3AccessKey:
    with services.catalog.session(readonly=True) as s:
        row = s.scalars(select(S3AccessKey).where(S3AccessKey.access_key_id == access_key_id)).one()
        s.expunge(row)
        return row


def test_a_created_key_shows_its_secret_once_and_resolves_to_its_tokens_principal(services, master):
    reader = token_of(services, master, description="reader", space_permissions={"private": "read"})
    key = access_keys.create(services, reader, description="laptop")
    assert re.fullmatch(r"EK[A-Z2-7]{18}", key.access_key_id)
    assert key.secret_access_key is not None and len(key.secret_access_key) == 40
    assert (key.token_id, key.description, key.last_used_at, key.expires_at) == (
        reader.token_id,
        "laptop",
        None,
        None,
    )

    credential = resolve(services, key.access_key_id, None)
    assert credential.kind == "key" and credential.session_token is None and credential.file_scope is None
    assert credential.secret_access_key == key.secret_access_key
    assert credential.principal == reader  # exactly the token's permissions
    assert (
        credential.principal.space_access("private") == "read"
        and credential.principal.space_access("x") is None
    )

    listed = access_keys.list_keys(services, reader)
    assert [k.access_key_id for k in listed] == [key.access_key_id]
    assert listed[0].secret_access_key is None  # never again
    assert listed[0].last_used_at is not None  # the resolve above touched it


def test_the_secret_is_stored_sealed_and_bound_to_its_key_id(services, master):
    one = access_keys.create(services, master)
    two = access_keys.create(services, master)
    assert one.secret_access_key and two.secret_access_key
    row = row_of(services, one.access_key_id)
    assert one.secret_access_key.encode() not in row.secret_sealed
    assert len(row.secret_sealed) == 12 + 40 + 16  # nonce, ciphertext, tag
    # a sealed secret copied into another key's row does not open there
    with services.catalog.session() as s:
        other = s.scalars(select(S3AccessKey).where(S3AccessKey.access_key_id == two.access_key_id)).one()
        other.secret_sealed = row.secret_sealed
    with pytest.raises(Unauthenticated) as caught:
        resolve(services, two.access_key_id, None)
    assert caught.value.code == "s3.invalidAccessKeyId"
    assert resolve(services, one.access_key_id, None).secret_access_key == one.secret_access_key


@pytest.mark.parametrize(
    "akid", ["EKAAAAAAAAAAAAAAAAAA", "AKIAIOSFODNN7EXAMPLE", "", "EK", "EK" + "A" * 100, "é" * 20]
)
def test_unknown_and_malformed_access_key_ids_are_invalid_access_key_ids(services, akid):
    with pytest.raises(Unauthenticated) as caught:
        resolve(services, akid, None)
    assert caught.value.code == "s3.invalidAccessKeyId"


def test_a_session_token_sent_with_an_access_key_is_an_invalid_token(services, master):
    key = access_keys.create(services, master)
    with pytest.raises(Unauthenticated) as caught:
        resolve(services, key.access_key_id, "ES1.something.else")
    assert caught.value.code == "s3.invalidToken"


def test_revoking_the_key_its_token_or_disabling_the_project_stops_it_at_once(services, master):
    plain = token_of(services, master, description="plain")
    by_key, by_token = (
        access_keys.create(services, plain),
        access_keys.create(services, master, token_id=plain.token_id),
    )
    resolve(services, by_key.access_key_id, None)
    access_keys.revoke(services, plain, by_key.access_key_id)
    with pytest.raises(Unauthenticated, match="revoked") as caught:
        resolve(services, by_key.access_key_id, None)
    assert caught.value.code == "s3.invalidAccessKeyId"
    with pytest.raises(NotFound):
        access_keys.revoke(services, plain, by_key.access_key_id)  # revoked twice
    assert row_of(services, by_key.access_key_id).secret_sealed == b""  # its secret is destroyed

    master_key = access_keys.create(services, master)
    resolve(services, by_token.access_key_id, None)
    auth.revoke_token(services.catalog, plain.token_id or 0, master)
    with pytest.raises(Unauthenticated) as caught:
        resolve(services, by_token.access_key_id, None)
    assert caught.value.code == "s3.invalidAccessKeyId"
    assert [k.access_key_id for k in access_keys.list_keys(services, master)] == [master_key.access_key_id]

    with services.catalog.session() as s:
        project = s.get(Project, master.project_id)
        assert project is not None
        project.disabled = True
    with pytest.raises(Unauthenticated, match="revoked") as caught:
        resolve(services, master_key.access_key_id, None)
    assert caught.value.code == "s3.invalidAccessKeyId"


def test_an_expired_token_or_key_stops_its_keys(services, master):
    short = token_of(services, master, expires_in=3600)
    key = access_keys.create(services, short, expires_in=10 * 3600)
    row = row_of(services, key.access_key_id)
    assert key.expires_at is not None and row.expires_at == key.expires_at
    with services.catalog.session(readonly=True) as s:
        token = s.get(Token, short.token_id)
        assert token is not None and key.expires_at == token.expires_at  # capped at the token's expiry
    resolve(services, key.access_key_id, None)
    with services.catalog.session() as s:
        token = s.get(Token, short.token_id)
        assert token is not None
        token.expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(Unauthenticated, match="token of this access key has expired"):
        resolve(services, key.access_key_id, None)

    own = access_keys.create(services, master, expires_in=60)
    assert own.expires_at is not None and timedelta(seconds=55) < own.expires_at - utcnow() <= timedelta(
        seconds=60
    )
    with services.catalog.session() as s:
        s.scalars(
            select(S3AccessKey).where(S3AccessKey.access_key_id == own.access_key_id)
        ).one().expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(Unauthenticated, match="expired") as caught:
        resolve(services, own.access_key_id, None)
    assert caught.value.code == "s3.invalidAccessKeyId"


def test_who_may_create_list_and_revoke_whose_keys(services, master):
    plain = token_of(services, master, description="plain")
    other = token_of(services, master, description="other")
    manager = token_of(services, master, description="manager", can_manage_tokens=True)
    with pytest.raises(PermissionDenied):
        access_keys.create(services, plain, token_id=other.token_id)
    with pytest.raises(Unauthenticated):
        access_keys.create(services, auth.ANONYMOUS)
    with pytest.raises(PermissionDenied, match="master token"):
        access_keys.create(services, manager, token_id=master.token_id)
    for_other = access_keys.create(services, manager, token_id=other.token_id, description="given")
    assert for_other.token_id == other.token_id
    assert resolve(services, for_other.access_key_id, None).principal == other
    own = access_keys.create(services, plain)

    # another project's tokens and keys are not there
    elsewhere = create_project(services.catalog, "elsewhere")
    stranger = auth.authenticate(services.catalog, elsewhere.master.token)
    with pytest.raises(NotFound):
        access_keys.create(services, stranger, token_id=plain.token_id)
    with pytest.raises(NotFound):
        access_keys.revoke(services, stranger, own.access_key_id)
    assert access_keys.list_keys(services, stranger) == []

    assert [k.access_key_id for k in access_keys.list_keys(services, plain)] == [own.access_key_id]
    assert [k.access_key_id for k in access_keys.list_keys(services, other)] == [for_other.access_key_id]
    assert {k.access_key_id for k in access_keys.list_keys(services, manager)} == {
        own.access_key_id,
        for_other.access_key_id,
    }
    with pytest.raises(NotFound):
        access_keys.revoke(services, plain, for_other.access_key_id)  # not its own
    resolve(services, for_other.access_key_id, None)
    access_keys.revoke(services, manager, own.access_key_id)  # a token manager revokes any
    assert access_keys.list_keys(services, plain) == []


def test_a_token_holds_at_most_the_configured_number_of_live_keys(services, master):
    keys = [access_keys.create(services, master) for _ in range(3)]
    with pytest.raises(Conflict, match="s3_max_keys_per_token") as caught:
        access_keys.create(services, master)
    assert caught.value.code == "accessKeys.limitReached"
    access_keys.revoke(services, master, keys[0].access_key_id)
    access_keys.create(services, master)  # a revoked key frees its place
    assert len(access_keys.list_keys(services, master)) == 3


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"expires_in": 0}, "expiresIn"),
        ({"expires_in": -5}, "expiresIn"),
        ({"expires_in": 10**15}, "expiresIn"),
        ({"description": "x" * 1025}, "description"),
    ],
)
def test_invalid_requests_are_refused_and_create_nothing(services, master, kwargs, message):
    with pytest.raises(InvalidInput, match=message):
        access_keys.create(services, master, **kwargs)
    assert access_keys.list_keys(services, master) == []


def test_keys_survive_a_rotation_of_the_installation_secret_and_are_rewrapped(services, master):
    key = access_keys.create(services, master)
    sealed_by_first = row_of(services, key.access_key_id).secret_key_id
    gone = access_keys.create(services, master)
    access_keys.revoke(services, master, gone.access_key_id)  # a revoked key is not re-sealed

    before_rewrap = rotated(services, "second-secret", ["first-secret"])
    assert resolve(before_rewrap, key.access_key_id, None).secret_access_key == key.secret_access_key
    dropped_too_early = rotated(services, "second-secret", [])
    with pytest.raises(Unauthenticated, match="can no longer be used") as caught:
        resolve(dropped_too_early, key.access_key_id, None)
    assert caught.value.code == "s3.invalidAccessKeyId"
    assert access_keys.rewrap(dropped_too_early) == 0  # nothing it can open: left as it is

    assert access_keys.rewrap(before_rewrap) == 1
    assert row_of(services, key.access_key_id).secret_key_id != sealed_by_first
    assert access_keys.rewrap(before_rewrap) == 0  # idempotent
    after = rotated(services, "second-secret", [])
    assert resolve(after, key.access_key_id, None).secret_access_key == key.secret_access_key


def test_the_rewrap_runs_as_a_periodic_task(services):
    assert services.registry.periodic()[access_keys.REWRAP_TASK] is access_keys.rewrap


def test_no_secret_is_ever_logged_or_in_a_repr(services, master, caplog):
    caplog.set_level(logging.DEBUG)
    key = access_keys.create(services, master, description="ci")
    credential = resolve(services, key.access_key_id, None)
    access_keys.revoke(services, master, key.access_key_id)
    assert key.secret_access_key
    assert key.access_key_id in caplog.text  # the id is logged, the secret never
    assert key.secret_access_key not in caplog.text
    assert key.secret_access_key not in repr(key) and key.secret_access_key not in repr(credential)
