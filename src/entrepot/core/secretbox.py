"""Secrets sealed with the installation key: AES-256-GCM under a key derived (HKDF) from it.

The installation secret (``Services.secret_key``) never encrypts anything itself: each use
derives its own 256-bit key with HKDF-SHA256 (``info = entrepot/<purpose>/v1``), so a key
for one purpose says nothing about another. :func:`seal` always uses the current secret
(``keys[0]``); :func:`open_sealed` accepts any of ``keys`` (the current one, then the former
ones of ``previous_secret_keys``), so rotating the installation secret keeps sealed values
readable while the former secret is kept, and a re-wrap (``seal(open_sealed(...))``) moves
them to the new one.

A sealed value records which derived key sealed it (``key_id``, a fingerprint: the first 16
hex digits of the SHA-256 of the derived key, which reveals nothing of it) and is bound to
its context by the associated data ``aad``: a sealed secret copied into another row does not
open there.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from entrepot.core.errors import PermissionDenied

NONCE_BYTES = 12


@dataclass(frozen=True)
class Sealed:
    """A sealed value: ``blob`` is nonce (12 bytes) | ciphertext | tag (16 bytes)."""

    key_id: str  # which derived key sealed it (its fingerprint)
    blob: bytes

    def __repr__(self) -> str:  # the ciphertext is no secret, but a log has no use for it
        return f"Sealed(key_id={self.key_id!r}, {len(self.blob)} bytes)"


@lru_cache(maxsize=64)
def derive_key(secret: bytes, purpose: str) -> bytes:
    """The 256-bit key of ``purpose`` derived from an installation secret (HKDF-SHA256)."""
    if not secret:
        raise ValueError("an empty installation secret derives no key")
    hkdf = HKDF(algorithm=SHA256(), length=32, salt=None, info=f"entrepot/{purpose}/v1".encode())
    return hkdf.derive(secret)


def key_id(secret: bytes, purpose: str) -> str:
    """The fingerprint of the key ``secret`` derives for ``purpose``."""
    return hashlib.sha256(derive_key(secret, purpose)).hexdigest()[:16]


def seal(keys: Sequence[bytes], purpose: str, plaintext: bytes, aad: bytes) -> Sealed:
    """``plaintext`` encrypted under the key the current secret (``keys[0]``) derives for ``purpose``."""
    if not keys:
        raise ValueError("sealing needs an installation secret")
    key = derive_key(keys[0], purpose)
    nonce = os.urandom(NONCE_BYTES)
    return Sealed(key_id(keys[0], purpose), nonce + AESGCM(key).encrypt(nonce, plaintext, aad))


def open_sealed(keys: Sequence[bytes], purpose: str, sealed: Sealed, aad: bytes) -> bytes:
    """The plaintext of ``sealed``, opened with whichever of ``keys`` sealed it.

    Raises ``PermissionDenied`` (``secretbox.cannotOpen``) when none of them does: the secret
    that sealed it was dropped from ``previous_secret_keys``, or the value or ``aad`` was altered.
    """
    # the key whose fingerprint matches first; the others too (a fingerprint is only a hint)
    ordered = sorted(keys, key=lambda k: key_id(k, purpose) != sealed.key_id)
    nonce, body = sealed.blob[:NONCE_BYTES], sealed.blob[NONCE_BYTES:]
    if len(nonce) == NONCE_BYTES and body:
        for secret in ordered:
            try:
                return AESGCM(derive_key(secret, purpose)).decrypt(nonce, body, aad)
            except InvalidTag:
                continue
    raise PermissionDenied(
        "a sealed secret cannot be opened with the installation's keys (was the secret that sealed it "
        "dropped from previous_secret_keys?)",
        code="secretbox.cannotOpen",
    )
