"""Session credentials: stateless, scoped to one file, MAC'd with the installation key, dying with
their token and file."""

from __future__ import annotations

import base64
import json
import logging
import re
from datetime import timedelta

import pytest

from entrepot.config import Settings
from entrepot.core import auth, sessions
from entrepot.core.auth import TokenSpec
from entrepot.core.catalog import File
from entrepot.core.clock import utcnow
from entrepot.core.errors import Gone, InvalidInput, NotFound, Unauthenticated
from entrepot.core.files import service as files
from entrepot.core.projects import create_project
from entrepot.core.s3_credentials import FileScope, resolve
from entrepot.core.services import Services
from support.rotation import rotated


@pytest.fixture
def settings(tmp_path, catalog_url):
    return Settings(data_dir=tmp_path, catalog_url=catalog_url, secret_key="first-secret")


def new_file(services: Services, principal: auth.Principal, name: str = "data.csv") -> FileScope:
    prepared = files.prepare(services, principal, files.NewFile(name=name))
    return FileScope(file_id=prepared.file.id, key=prepared.file.key, prefix=False, access="w")


def token_of(services: Services, master: auth.Principal, **spec) -> auth.Principal:  # type: ignore[no-untyped-def]
    issued = auth.create_token(services.catalog, master.project_id or 0, TokenSpec(**spec), creator=master)
    return auth.authenticate(services.catalog, issued.token)


def reject(services: Services, akid: str, token: str | None) -> str:
    with pytest.raises(Unauthenticated) as caught:
        resolve(services, akid, token)
    return caught.value.code


def test_minted_credentials_resolve_to_their_token_and_file_scope(services, master):
    scope = new_file(services, master)
    before = utcnow()
    creds = sessions.mint(services, master, scope)
    assert re.fullmatch(r"ES[A-Z2-7]{18}", creds.access_key_id)
    assert len(creds.secret_access_key) == 40 and creds.session_token.startswith("ES1.")
    ttl = services.settings.s3_session_ttl
    assert before + timedelta(seconds=ttl - 2) <= creds.expiration <= utcnow() + timedelta(seconds=ttl)

    credential = resolve(services, creds.access_key_id, creds.session_token)
    assert credential.kind == "session"
    assert credential.secret_access_key == creds.secret_access_key
    assert credential.session_token == creds.session_token
    assert credential.file_scope == scope
    assert credential.principal == master

    again = sessions.mint(services, master, scope)  # every credential is distinct
    assert again.access_key_id != creds.access_key_id and again.secret_access_key != creds.secret_access_key


def test_the_scope_allows_its_key_or_prefix_and_write_only_when_granted():
    write = FileScope(1, "projects/1/files/1/a.csv", prefix=False, access="w")
    assert write.allows("projects/1/files/1/a.csv", "w") and write.allows("projects/1/files/1/a.csv", "r")
    assert not write.allows("projects/1/files/1/a.csv.gz", "r")
    read = FileScope(2, "projects/1/files/2/sliced/", prefix=True, access="r")
    assert read.allows("projects/1/files/2/sliced/part0001.gz", "r")
    assert not read.allows("projects/1/files/2/sliced/part0001.gz", "w")
    assert not read.allows("projects/1/files/2/other", "r")


def test_lifetime_is_the_shortest_of_ttl_token_and_file(services, master):
    short = token_of(services, master, expires_in=600)
    scope = new_file(services, short)
    creds = sessions.mint(services, short, scope)
    assert creds.expiration <= utcnow() + timedelta(seconds=600)
    assert sessions.mint(services, short, scope, ttl=60).expiration <= utcnow() + timedelta(seconds=60)
    with services.catalog.session() as s:
        file = s.get(File, scope.file_id)
        assert file is not None
        file.expires_at = utcnow() + timedelta(seconds=30)
    assert sessions.mint(services, short, scope).expiration <= utcnow() + timedelta(seconds=30)
    with services.catalog.session() as s:
        file = s.get(File, scope.file_id)
        assert file is not None
        file.expires_at = utcnow() - timedelta(seconds=1)
    with pytest.raises(Gone):
        sessions.mint(services, short, scope)
    with pytest.raises(InvalidInput):
        sessions.mint(services, short, scope, ttl=0)
    longest = sessions.mint(services, master, new_file(services, master), ttl=10**12)  # capped by the setting
    assert longest.expiration <= utcnow() + timedelta(seconds=services.settings.s3_session_ttl)


def test_mint_needs_a_token_and_a_file_of_its_project(services, master):
    scope = new_file(services, master)
    with pytest.raises(Unauthenticated):
        sessions.mint(services, auth.ANONYMOUS, scope)
    elsewhere = create_project(services.catalog, "elsewhere")
    stranger = auth.authenticate(services.catalog, elsewhere.master.token)
    with pytest.raises(NotFound):
        sessions.mint(services, stranger, scope)
    with pytest.raises(NotFound):
        sessions.mint(services, master, FileScope(10**9, "nope", prefix=False, access="r"))


def test_altered_forged_misplaced_and_missing_tokens_are_invalid_tokens(services, master):
    creds = sessions.mint(services, master, new_file(services, master))
    akid, token = creds.access_key_id, creds.session_token
    assert reject(services, akid, None) == "s3.invalidToken"
    assert reject(services, akid, "") == "s3.invalidToken"
    other = sessions.mint(services, master, new_file(services, master, "b.csv"))
    assert reject(services, akid, other.session_token) == "s3.invalidToken"  # another credential's token

    # a claim widened to another file (prefix true) with the MAC left as it was
    version, body, mac = token.split(".")
    claim = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claim["x"], claim["k"] = True, ""
    widened = f"{version}.{base64.urlsafe_b64encode(json.dumps(claim).encode()).rstrip(b'=').decode()}.{mac}"
    assert reject(services, sessions.access_key_id_of(widened), widened) == "s3.invalidToken"

    # a token MAC'd by another installation's key
    forged = sessions.mint(
        rotated(services, "another-installation", []), master, new_file(services, master, "c.csv")
    )
    assert reject(services, forged.access_key_id, forged.session_token) == "s3.invalidToken"

    for junk in ("ES1.", "ES1..", "x" * 9000, "ES1.é.é", token + "A"):
        assert reject(services, sessions.access_key_id_of(junk), junk) == "s3.invalidToken"


def test_expired_credentials_are_expired_tokens(services, master):
    creds = sessions.mint(services, master, new_file(services, master), ttl=60)
    claim, secret = sessions.verify(services.verification_keys, creds.access_key_id, creds.session_token)
    assert secret == creds.secret_access_key and claim.expires_at == int(creds.expiration.timestamp())
    later = creds.expiration.timestamp()
    with pytest.raises(Unauthenticated, match="expired") as caught:
        sessions.verify(services.verification_keys, creds.access_key_id, creds.session_token, now=later)
    assert caught.value.code == "s3.expiredToken"


def test_credentials_die_with_their_token_and_their_file(services, master):
    plain = token_of(services, master, description="uploader")
    one, two = new_file(services, plain, "one.csv"), new_file(services, plain, "two.csv")
    by_file, by_token = sessions.mint(services, plain, one), sessions.mint(services, plain, two)
    resolve(services, by_file.access_key_id, by_file.session_token)
    files.delete(services, plain, one.file_id)
    assert reject(services, by_file.access_key_id, by_file.session_token) == "s3.invalidAccessKeyId"

    resolve(services, by_token.access_key_id, by_token.session_token)
    auth.revoke_token(services.catalog, plain.token_id or 0, master)
    assert reject(services, by_token.access_key_id, by_token.session_token) == "s3.invalidAccessKeyId"


def test_credentials_survive_a_rotation_while_the_former_key_is_kept(services, master):
    creds = sessions.mint(services, master, new_file(services, master))
    kept = rotated(services, "second-secret", ["first-secret"])
    assert (
        resolve(kept, creds.access_key_id, creds.session_token).secret_access_key == creds.secret_access_key
    )
    fresh = sessions.mint(kept, master, new_file(services, master, "new.csv"))
    assert (
        resolve(kept, fresh.access_key_id, fresh.session_token).secret_access_key == fresh.secret_access_key
    )
    dropped = rotated(services, "second-secret", [])
    assert reject(dropped, creds.access_key_id, creds.session_token) == "s3.invalidToken"


def test_no_secret_or_session_token_is_logged_or_in_a_repr(services, master, caplog):
    caplog.set_level(logging.DEBUG)
    creds = sessions.mint(services, master, new_file(services, master))
    credential = resolve(services, creds.access_key_id, creds.session_token)
    for secret in (creds.secret_access_key, creds.session_token):
        assert secret not in caplog.text
        assert secret not in repr(creds) and secret not in repr(credential)
