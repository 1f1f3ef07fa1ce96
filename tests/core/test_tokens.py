"""Token views: what the faces render of a token, built in one core call."""

from __future__ import annotations

import pytest

from entrepot.core import auth, tokens
from entrepot.core.auth import TokenSpec
from entrepot.core.errors import NotFound, PermissionDenied


def test_a_created_token_comes_with_its_secret_project_and_creator(services, master):
    view = tokens.create(
        services.catalog, master, TokenSpec(description="etl", bucket_permissions={"in.c-a": "read"})
    )
    assert view.secret is not None and auth.authenticate(services.catalog, view.secret).token_id == view.id
    assert view.project.name == "acme" and view.project.is_disabled is False
    assert view.creator == auth.TokenRef(master.token_id, "Master token of acme")
    assert view.bucket_permissions == {"in.c-a": "read"} and not view.is_expired and not view.is_disabled
    # afterwards the secret is never shown again
    assert tokens.detail(services.catalog, master, view.id).secret is None


def test_verify_lists_and_refresh_answer_views(services, master):
    me = tokens.verify(services.catalog, master)
    assert me.id == master.token_id and me.is_master and me.creator is None
    other = tokens.create(services.catalog, master, TokenSpec(description="other"))
    assert [t.id for t in tokens.list_project_tokens(services.catalog, master)] == [me.id, other.id]
    fresh = tokens.refresh(services.catalog, master, other.id)
    assert fresh.secret not in (None, other.secret)


def test_revoked_tokens_are_gone_and_plain_tokens_see_only_themselves(services, master):
    plain = tokens.create(services.catalog, master, TokenSpec(description="plain"))
    caller = auth.authenticate(services.catalog, plain.secret)
    assert tokens.verify(services.catalog, caller).id == plain.id
    with pytest.raises(PermissionDenied):
        tokens.detail(services.catalog, caller, master.token_id)
    tokens.revoke(services.catalog, master, plain.id)
    with pytest.raises(NotFound):
        tokens.detail(services.catalog, master, plain.id)
