"""Tokens: hashing, verification, expiry, revocation and permission checks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from entrepot.core import auth
from entrepot.core.auth import TokenSpec
from entrepot.core.catalog import Token
from entrepot.core.clock import utcnow
from entrepot.core.errors import InvalidInput, NotFound, PermissionDenied, Unauthenticated
from entrepot.core.projects import create_project


@pytest.fixture
def project(services):
    return create_project(services.catalog, "acme")


def test_token_is_stored_only_as_a_hash(services, project, tmp_path):
    token = project.master.token
    with services.catalog.session(readonly=True) as s:
        row = s.get(Token, project.master.row.id)
    assert row.secret_hash == auth.hash_token(token)
    assert token not in row.secret_hash
    secret = token.rsplit("-", 1)[1]
    for path in tmp_path.glob("catalog.sqlite*"):
        assert secret.encode() not in path.read_bytes()


def test_valid_token_authenticates_to_its_project_with_its_permissions(services, project):
    issued = auth.create_token(
        services.catalog,
        project.project.id,
        TokenSpec(
            description="reader",
            bucket_permissions={"in.c-main": "read"},
            space_permissions={"private": "write"},
        ),
    )
    p = auth.authenticate(services.catalog, issued.token)
    assert (p.project_id, p.project_name, p.description) == (project.project.id, "acme", "reader")
    assert not p.is_master
    assert p.bucket_access("in.c-main") == "read"
    assert p.bucket_access("in.c-other") is None
    assert p.space_access("private") == "write"


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t[:-1] + ("0" if t[-1] != "0" else "1"),  # wrong secret, right id
        lambda t: "some-token",
        lambda t: t.split("-", 1)[0] + "-999-" + t.rsplit("-", 1)[1],  # unknown id
        lambda t: t + "x",
    ],
)
def test_wrong_or_malformed_token_is_rejected(services, project, mangle):
    with pytest.raises(Unauthenticated):
        auth.authenticate(services.catalog, mangle(project.master.token))


def test_no_token_is_the_anonymous_principal(services):
    p = auth.authenticate(services.catalog, None)
    assert p.anonymous and p.project_id is None
    with pytest.raises(Unauthenticated):
        p.require_authenticated()


def test_expired_token_is_rejected_with_a_message_saying_so(services, project):
    issued = auth.create_token(services.catalog, project.project.id, TokenSpec(expires_in=3600))
    assert auth.authenticate(services.catalog, issued.token).token_id == issued.row.id
    with services.catalog.session() as s:
        s.get(Token, issued.row.id).expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(Unauthenticated, match="expired"):
        auth.authenticate(services.catalog, issued.token)


def test_revoked_token_stops_working_at_once(services, project):
    issued = auth.create_token(services.catalog, project.project.id, TokenSpec())
    auth.revoke_token(services.catalog, issued.row.id)
    with pytest.raises(Unauthenticated, match="revoked"):
        auth.authenticate(services.catalog, issued.token)
    with pytest.raises(NotFound):
        auth.revoke_token(services.catalog, issued.row.id)


def test_refresh_replaces_the_secret(services, project):
    master = auth.authenticate(services.catalog, project.master.token)
    issued = auth.create_token(services.catalog, project.project.id, TokenSpec(), creator=master)
    fresh = auth.refresh_token(services.catalog, issued.row.id, master)
    assert fresh.token != issued.token
    assert auth.authenticate(services.catalog, fresh.token).token_id == issued.row.id
    with pytest.raises(Unauthenticated):
        auth.authenticate(services.catalog, issued.token)


def test_last_used_is_recorded(services, project):
    issued = auth.create_token(services.catalog, project.project.id, TokenSpec())
    assert issued.row.last_used_at is None
    auth.authenticate(services.catalog, issued.token, touch_interval=0)
    with services.catalog.session(readonly=True) as s:
        assert s.get(Token, issued.row.id).last_used_at is not None


def test_read_permission_does_not_allow_writing(services, project):
    issued = auth.create_token(
        services.catalog, project.project.id, TokenSpec(bucket_permissions={"in.c-main": "read"})
    )
    p = auth.authenticate(services.catalog, issued.token)
    p.require_bucket("in.c-main", "read")
    with pytest.raises(PermissionDenied, match=r"write permission on bucket in\.c-main"):
        p.require_bucket("in.c-main", "write")
    with pytest.raises(PermissionDenied):
        p.require_bucket("in.c-secret", "read")
    with pytest.raises(PermissionDenied):
        p.require_manage_buckets()


def test_master_token_has_every_permission(services, project):
    p = auth.authenticate(services.catalog, project.master.token)
    p.require_bucket("in.c-anything", "write")
    p.require_space("private", "write")
    p.require_manage_buckets()
    p.require_manage_tokens()
    p.require_master("do anything")


def test_token_manager_cannot_grant_more_than_it_has(services, project):
    manager = auth.create_token(
        services.catalog,
        project.project.id,
        TokenSpec(can_manage_tokens=True, bucket_permissions={"in.c-main": "read"}),
    )
    p = auth.authenticate(services.catalog, manager.token)
    ok = auth.create_token(
        services.catalog, project.project.id, TokenSpec(bucket_permissions={"in.c-main": "read"}), creator=p
    )
    assert ok.row.creator_token_id == manager.row.id
    for spec in (
        TokenSpec(is_master=True),
        TokenSpec(can_manage_tokens=True),
        TokenSpec(can_manage_buckets=True),
        TokenSpec(bucket_permissions={"in.c-main": "write"}),
        TokenSpec(bucket_permissions={"in.c-other": "read"}),
    ):
        with pytest.raises(PermissionDenied):
            auth.create_token(services.catalog, project.project.id, spec, creator=p)


def test_token_without_manage_permission_cannot_create_or_list_tokens(services, project):
    plain = auth.authenticate(
        services.catalog, auth.create_token(services.catalog, project.project.id, TokenSpec()).token
    )
    with pytest.raises(PermissionDenied):
        auth.create_token(services.catalog, project.project.id, TokenSpec(), creator=plain)
    with pytest.raises(PermissionDenied):
        auth.list_tokens(services.catalog, project.project.id, plain)


def test_tokens_cannot_reach_another_project(services, project):
    other = create_project(services.catalog, "other")
    master = auth.authenticate(services.catalog, project.master.token)
    with pytest.raises(PermissionDenied):
        auth.create_token(services.catalog, other.project.id, TokenSpec(), creator=master)
    with pytest.raises(NotFound):
        auth.get_token(services.catalog, other.master.row.id, master)
    with pytest.raises(NotFound):
        auth.revoke_token(services.catalog, other.master.row.id, master)


@pytest.mark.parametrize(
    ("perms", "message"),
    [
        ({"in.c-main": "admin"}, "must be 'read' or 'write'"),
        ({"../etc": "read"}, "invalid bucket name"),
    ],
)
def test_invalid_permissions_are_rejected(services, project, perms, message):
    with pytest.raises(InvalidInput, match=message):
        auth.create_token(services.catalog, project.project.id, TokenSpec(bucket_permissions=perms))


def test_permission_pairs_parse_and_reject_garbage():
    assert auth.parse_permission_pairs(["in.c-a=read", "in.c-b=write"], "bucket") == {
        "in.c-a": "read",
        "in.c-b": "write",
    }
    with pytest.raises(InvalidInput, match="NAME=read"):
        auth.parse_permission_pairs(["in.c-a"], "bucket")


def test_non_positive_expiry_is_rejected(services, project):
    with pytest.raises(InvalidInput, match="expiresIn"):
        auth.create_token(services.catalog, project.project.id, TokenSpec(expires_in=0))
