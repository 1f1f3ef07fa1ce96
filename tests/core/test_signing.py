"""Signed, expiring URL tokens."""

from __future__ import annotations

import time
from urllib.parse import parse_qs

import pytest

from entrepot.core import signing
from entrepot.core.errors import PermissionDenied

SECRET = b"s3cret"


def test_a_fresh_signature_verifies():
    expires = int(time.time()) + 60
    sig = signing.sign(SECRET, "files.download", "42", expires)
    signing.verify(SECRET, "files.download", "42", str(expires), sig)


@pytest.mark.parametrize(
    ("secret", "purpose", "subject", "delta"),
    [
        (b"other", "files.download", "42", 0),
        (SECRET, "files.upload", "42", 0),
        (SECRET, "files.download", "43", 0),
        (SECRET, "files.download", "42", 1),
    ],
)
def test_any_change_invalidates_the_signature(secret, purpose, subject, delta):
    expires = int(time.time()) + 60
    sig = signing.sign(SECRET, "files.download", "42", expires)
    with pytest.raises(PermissionDenied) as err:
        signing.verify(secret, purpose, subject, expires + delta, sig)
    assert err.value.code == "signature.invalid"


def test_an_expired_signature_is_refused_with_a_clear_message():
    expires = int(time.time()) - 1
    sig = signing.sign(SECRET, "p", "s", expires)
    with pytest.raises(PermissionDenied) as err:
        signing.verify(SECRET, "p", "s", expires, sig)
    assert err.value.code == "signature.expired" and "expired" in err.value.message


@pytest.mark.parametrize(("expires", "signature"), [(None, "x"), ("1", None), ("", ""), ("soon", "x")])
def test_missing_or_malformed_parameters_are_refused(expires, signature):
    with pytest.raises(PermissionDenied):
        signing.verify(SECRET, "p", "s", expires, signature)


def test_signed_query_carries_expires_and_signature():
    now = 1_000_000.0
    query = parse_qs(signing.signed_query(SECRET, "p", "s", ttl=300, now=now))
    assert query["expires"] == ["1000300"]
    signing.verify(SECRET, "p", "s", query["expires"][0], query["signature"][0], now=now)
    with pytest.raises(PermissionDenied):
        signing.verify(SECRET, "p", "s", query["expires"][0], query["signature"][0], now=now + 301)
