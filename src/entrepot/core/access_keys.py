"""S3 access keys: long-lived (access key id, secret access key) pairs that belong to a token.

A key carries exactly its token's permissions, and dies with it: revoking or expiring the
token, or disabling its project, stops its keys at once (``core/s3_credentials.py`` checks
the token on every request). Access key ids are ``EK`` + 18 random base32 characters (20,
like AWS's); the secret access key (40 characters) is shown once, in :func:`create`'s
answer, and stored sealed (AES-256-GCM, ``core/secretbox.py``) under a key derived from the
installation secret, because the S3 face needs it back to recompute signatures.

Who may do what: a token creates keys for itself; a token that manages tokens (a master
token, or one with ``canManageTokens``) also for another token of its project (only a master
token for a master token). Listing shows a token its own keys, a token manager every key of
the project; revoking likewise. A token holds at most ``s3_max_keys_per_token`` live keys.

After the installation secret is rotated (the former one kept in ``previous_secret_keys``),
the periodic task ``s3.rewrap_keys`` re-seals every key with the new one, after which the
former secret may be dropped without losing a key.

A key :func:`use` resolved is kept in memory for ``s3_credential_cache_ttl`` seconds (its
secret, its token's principal), so that a client's requests do not each read three catalog
rows and open the sealed secret. The cache (one per :class:`Services`) hears every commit of
its catalog that changes a key, a token or a project (:meth:`Catalog.on_commit`) and forgets
what it held about them at once, before the committing call returns; a change made by another
process reaches it when the entry expires. An entry never outlives the key's or the token's
expiry, and an answer resolved while such a commit happened is not kept.
"""

from __future__ import annotations

import base64
import logging
import secrets
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from sqlalchemy import ColumnElement, func, or_, select

from entrepot.core.auth import Principal, principal_of
from entrepot.core.catalog import Catalog, Project, S3AccessKey, Token
from entrepot.core.catalog.db import Committed
from entrepot.core.clock import utcnow
from entrepot.core.errors import Conflict, InvalidInput, NotFound, PermissionDenied, Unauthenticated
from entrepot.core.secretbox import Sealed, key_id, open_sealed, seal

if TYPE_CHECKING:
    from entrepot.core.jobs import JobRegistry
    from entrepot.core.services import Services

log = logging.getLogger("entrepot.s3")

PREFIX = "EK"
ACCESS_KEY_ID_LENGTH = 20
SECRET_LENGTH = 40
MAX_DESCRIPTION = 1024
MAX_EXPIRES_IN = 100 * 365 * 24 * 3600  # a hundred years: "never" is leaving expiresIn out
_PURPOSE = "s3/access-key"
REWRAP_TASK = "s3.rewrap_keys"


@dataclass(frozen=True)
class AccessKeyView:
    """An access key as its callers see it; ``secret_access_key`` only in :func:`create`'s answer."""

    access_key_id: str
    token_id: int
    description: str
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime | None
    secret_access_key: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class KeyUse:
    """An access key resolved for a request: its secret and its token's principal."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    principal: Principal


def create(
    services: Services,
    caller: Principal,
    *,
    description: str = "",
    token_id: int | None = None,
    expires_in: int | None = None,
) -> AccessKeyView:
    """A new access key of ``token_id`` (default: the caller's token), with its secret (shown once).

    ``expires_in`` (seconds) ends it early; it never outlives its token (the expiry is capped
    at the token's).
    """
    caller.require_authenticated()
    if not isinstance(description, str) or len(description) > MAX_DESCRIPTION:
        raise InvalidInput(f"description must be a string of at most {MAX_DESCRIPTION} characters")
    if expires_in is not None and (isinstance(expires_in, bool) or not 0 < expires_in <= MAX_EXPIRES_IN):
        raise InvalidInput(f"expiresIn must be a number of seconds from 1 to {MAX_EXPIRES_IN}")
    target_id = caller.token_id if token_id is None else token_id
    if target_id != caller.token_id:
        caller.require_manage_tokens()
    now = utcnow()
    limit = services.settings.s3_max_keys_per_token
    with services.catalog.session() as s:
        token = s.scalars(select(Token).where(Token.id == target_id).with_for_update()).first()
        if token is None or token.project_id != caller.project_id or token.revoked_at is not None:
            raise NotFound(f"token {target_id} not found", code="tokens.notFound")
        if token.is_master and not caller.is_master:
            raise PermissionDenied("only a master token may create access keys for a master token")
        if token.expires_at is not None and token.expires_at <= now:
            raise InvalidInput(f"token {target_id} has expired; its keys would never work")
        live = s.scalar(
            select(func.count())
            .select_from(S3AccessKey)
            .where(S3AccessKey.token_id == target_id, *_live(now))
        )
        if (live or 0) >= limit:
            raise Conflict(
                f"token {target_id} already has {live} access keys, the most one token may hold "
                f"(s3_max_keys_per_token = {limit}); revoke one first",
                code="accessKeys.limitReached",
            )
        candidates = [now + timedelta(seconds=expires_in)] if expires_in is not None else []
        if token.expires_at is not None:
            candidates.append(token.expires_at)
        access_key_id = _new_access_key_id()
        secret = secrets.token_urlsafe(30)  # 40 characters
        sealed = seal(services.verification_keys, _PURPOSE, secret.encode("ascii"), _aad(access_key_id))
        row = S3AccessKey(
            access_key_id=access_key_id,
            project_id=token.project_id,
            token_id=token.id,
            description=description,
            secret_key_id=sealed.key_id,
            secret_sealed=sealed.blob,
            created_at=now,
            expires_at=min(candidates) if candidates else None,
        )
        s.add(row)
        s.flush()
        view = _view(row, secret=secret)
    log.info("access key %s created for token %s", access_key_id, target_id)
    return view


def list_keys(services: Services, caller: Principal) -> list[AccessKeyView]:
    """The caller's keys, or every key of the project for a token manager; oldest first.

    Revoked keys and the keys of revoked tokens are left out; expired ones are listed (with
    their ``expires_at``) until they are revoked.
    """
    caller.require_authenticated()
    query = (
        select(S3AccessKey)
        .join(Token, Token.id == S3AccessKey.token_id)
        .where(
            S3AccessKey.project_id == caller.project_id,
            S3AccessKey.revoked_at.is_(None),
            Token.revoked_at.is_(None),
        )
        .order_by(S3AccessKey.id)
    )
    if not (caller.is_master or caller.can_manage_tokens):
        query = query.where(S3AccessKey.token_id == caller.token_id)
    with services.catalog.session(readonly=True) as s:
        return [_view(row) for row in s.scalars(query)]


def revoke(services: Services, caller: Principal, access_key_id: str) -> None:
    """Revoke a key: the caller's own, or any of the project for a token manager. It stops at once."""
    caller.require_authenticated()
    manager = caller.is_master or caller.can_manage_tokens
    with services.catalog.session() as s:
        row = s.scalars(select(S3AccessKey).where(S3AccessKey.access_key_id == access_key_id)).first()
        if (
            row is None
            or row.revoked_at is not None
            or row.project_id != caller.project_id
            or (row.token_id != caller.token_id and not manager)
        ):
            raise NotFound(f"access key {_shown(access_key_id)} not found", code="accessKeys.notFound")
        row.revoked_at = utcnow()
        row.secret_sealed = b""  # a revoked key's secret is destroyed, not kept
    # the commit told the credential cache of this process (_KeyCache._on_commit): it is gone there
    log.info("access key %s revoked", access_key_id)


def use(services: Services, access_key_id: str) -> KeyUse:
    """The secret and principal of a live access key, for a request made with it.

    Raises ``Unauthenticated`` (``s3.invalidAccessKeyId``) for an unknown, revoked or expired
    key, a revoked or expired token, a disabled project, or a secret the installation's keys no
    longer open. Touches the key's ``last_used_at`` at most every ``token_touch_interval``
    (it is checked when the key is read from the catalog: at most once a cache lifetime).

    Answers from the process's cache when it holds the key (``s3_credential_cache_ttl``); one
    thread reads a key missing there while the others asking for it wait for its answer.
    Refusals are never cached.
    """
    if not (access_key_id.startswith(PREFIX) and len(access_key_id) == ACCESS_KEY_ID_LENGTH):
        raise _unknown()
    ttl = services.settings.s3_credential_cache_ttl
    if ttl <= 0:
        return _resolve(services, access_key_id, 0.0)[0]
    cache = _cache_of(services)
    found = cache.get(access_key_id)
    if found is not None:
        return found
    with cache.stripe(access_key_id):
        found = cache.get(access_key_id)  # read meanwhile by the thread this one waited for
        if found is not None:
            return found
        generation = cache.generation  # before the catalog is read: see _KeyCache.put
        used, entry = _resolve(services, access_key_id, ttl)
        cache.put(access_key_id, entry, generation)
        return used


def cached(services: Services, access_key_id: str) -> KeyUse | None:
    """:func:`use`'s answer if this process holds ``access_key_id`` in its cache, else None.

    Never touches the catalog nor waits for another thread, so an event loop may call it;
    on None, call :func:`use` (in a worker thread).
    """
    if services.settings.s3_credential_cache_ttl <= 0:
        return None
    cache = _caches.get(services)
    return cache.get(access_key_id) if cache is not None else None


def _resolve(services: Services, access_key_id: str, ttl: float) -> tuple[KeyUse, _Cached]:
    """A key read from the catalog: its use, and the cache entry that keeps it ``ttl`` seconds."""
    now = utcnow()
    with services.catalog.session(readonly=True) as s:
        found = s.execute(
            select(S3AccessKey, Token, Project)
            .join(Token, Token.id == S3AccessKey.token_id)
            .join(Project, Project.id == S3AccessKey.project_id)
            .where(S3AccessKey.access_key_id == access_key_id)
        ).first()
        if found is None:
            raise _unknown()
        row, token, project = found
        if row.revoked_at is not None or token.revoked_at is not None or project.disabled:
            raise _unknown("this access key has been revoked (or its token, or its project disabled)")
        if row.expires_at is not None and row.expires_at <= now:
            raise _unknown(f"this access key expired at {row.expires_at.isoformat()}")
        if token.expires_at is not None and token.expires_at <= now:
            raise _unknown("the token of this access key has expired")
        sealed = Sealed(row.secret_key_id, bytes(row.secret_sealed))
        principal = principal_of(token, project)
        last_used = row.last_used_at
        ends = [t for t in (row.expires_at, token.expires_at) if t is not None]
        token_id, project_id = token.id, project.id
    try:
        plain = open_sealed(services.verification_keys, _PURPOSE, sealed, _aad(access_key_id))
        secret = plain.decode("ascii")
    except (PermissionDenied, UnicodeDecodeError) as exc:
        log.warning("access key %s: its secret cannot be opened with the installation's keys", access_key_id)
        raise _unknown(
            "this access key can no longer be used (the server key that sealed it was dropped); "
            "create a new one"
        ) from exc
    interval = services.settings.token_touch_interval
    if last_used is None or (now - last_used).total_seconds() >= interval:
        with services.catalog.session() as s:
            fresh = s.scalars(select(S3AccessKey).where(S3AccessKey.access_key_id == access_key_id)).first()
            if fresh is not None:
                fresh.last_used_at = now
    used = KeyUse(access_key_id, secret, principal)
    return used, _Cached(used, token_id, project_id, min(ends) if ends else None, _monotonic() + ttl)


def rewrap(services: Services) -> int:
    """Re-seal every key sealed by a former installation secret with the current one; how many.

    Idempotent (every worker pool runs it): a row is only rewritten when it still names a former
    key. A key no installation key opens stays as it is (it is unusable; logged once per run).
    Revoked keys are left alone (their secret is gone).
    """
    keys = services.verification_keys
    current = key_id(keys[0], _PURPOSE)
    with services.catalog.session(readonly=True) as s:
        rows = s.execute(
            select(
                S3AccessKey.id,
                S3AccessKey.access_key_id,
                S3AccessKey.secret_key_id,
                S3AccessKey.secret_sealed,
            ).where(S3AccessKey.secret_key_id != current, S3AccessKey.revoked_at.is_(None))
        ).all()
    rewrapped = 0
    for row_id, access_key_id, sealed_by, blob in rows:
        old = Sealed(sealed_by, bytes(blob))
        try:
            plain = open_sealed(keys, _PURPOSE, old, _aad(access_key_id))
        except PermissionDenied:
            log.warning(
                "access key %s: no installation key opens its secret; it cannot be used", access_key_id
            )
            continue
        new = seal(keys, _PURPOSE, plain, _aad(access_key_id))
        with services.catalog.session() as s:
            fresh = s.get(S3AccessKey, row_id)
            if fresh is None or fresh.secret_key_id != sealed_by or fresh.revoked_at is not None:
                continue  # deleted, or re-sealed by another worker meanwhile
            fresh.secret_key_id, fresh.secret_sealed = new.key_id, new.blob
        rewrapped += 1
    if rewrapped:
        log.info("re-sealed %d access key(s) with the current installation secret", rewrapped)
    return rewrapped


def register_jobs(registry: JobRegistry[Services]) -> None:
    registry.register_periodic(REWRAP_TASK, rewrap)


# -- the cache of resolved keys ------------------------------------------------------------------

_CACHED_TABLES = frozenset({S3AccessKey.__tablename__, Token.__tablename__, Project.__tablename__})
_BOOKKEEPING = frozenset({"last_used_at"})  # an update of only these changes nothing a key may do
_STRIPES = 64  # locks that let one thread per key (modulo collisions) read a missing key
_MAX_CACHED = 10_000


def _monotonic() -> float:
    """The cache's clock (tests replace it to move time without waiting)."""
    return time.monotonic()


@dataclass(frozen=True)
class _Cached:
    use: KeyUse
    token_id: int
    project_id: int
    expires_at: datetime | None  # the key's or its token's expiry, whichever comes first
    fresh_until: float  # _monotonic() time


class _KeyCache:
    """The keys one :class:`Services` resolved lately; forgets a key when a commit of this process
    changes it, its token or its project.

    Reads take no lock (a dict look-up); writes and invalidations take ``_lock``. ``generation``
    grows with every invalidation: an entry resolved from the catalog is only stored if no
    invalidation happened since its reading began, so an answer read just before a revocation
    committed is never kept after it.
    """

    def __init__(self, catalog: Catalog):
        self._entries: dict[str, _Cached] = {}
        self._lock = threading.Lock()
        self._stripes = tuple(threading.Lock() for _ in range(_STRIPES))
        self.generation = 0
        catalog.on_commit(self._on_commit, tables=_CACHED_TABLES)

    def get(self, access_key_id: str) -> KeyUse | None:
        entry = self._entries.get(access_key_id)
        if entry is None or _monotonic() >= entry.fresh_until:
            return None
        if entry.expires_at is not None and entry.expires_at <= utcnow():
            return None
        return entry.use

    def stripe(self, access_key_id: str) -> threading.Lock:
        return self._stripes[hash(access_key_id) % _STRIPES]

    def put(self, access_key_id: str, entry: _Cached, generation: int) -> None:
        with self._lock:
            if generation != self.generation:
                return  # a key, token or project changed while this one was read: maybe it
            entries = self._entries
            if len(entries) >= _MAX_CACHED and access_key_id not in entries:
                now = _monotonic()
                entries = {k: e for k, e in entries.items() if e.fresh_until > now}
                while len(entries) >= _MAX_CACHED:
                    del entries[next(iter(entries))]  # the oldest
            entries[access_key_id] = entry
            self._entries = entries

    def _on_commit(self, committed: Committed) -> None:
        everything = bool(committed.bulk)
        keys: set[object] = set()
        tokens: set[object] = set()
        projects: set[object] = set()
        for row in committed.rows:
            if row.kind == "insert" or (row.kind == "update" and row.attributes <= _BOOKKEEPING):
                continue  # a new row is in no entry; a touch changes nothing an entry holds
            if row.table == S3AccessKey.__tablename__:
                column, found = "access_key_id", keys
            else:
                column, found = "id", tokens if row.table == Token.__tablename__ else projects
            value = row.values.get(column)
            if value is None:
                everything = True  # not loaded: which entries it concerns is unknown
            else:
                found.add(value)
        if not (everything or keys or tokens or projects):
            return
        with self._lock:
            self.generation += 1
            if everything:
                self._entries = {}
            else:
                self._entries = {
                    k: e
                    for k, e in self._entries.items()
                    if k not in keys and e.token_id not in tokens and e.project_id not in projects
                }


_caches: weakref.WeakKeyDictionary[Services, _KeyCache] = weakref.WeakKeyDictionary()
_caches_lock = threading.Lock()


def _cache_of(services: Services) -> _KeyCache:
    cache = _caches.get(services)
    if cache is None:
        with _caches_lock:
            cache = _caches.get(services)
            if cache is None:
                cache = _caches[services] = _KeyCache(services.catalog)
    return cache


# -- helpers ----------------------------------------------------------------------------------


def _live(now: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        S3AccessKey.revoked_at.is_(None),
        or_(S3AccessKey.expires_at.is_(None), S3AccessKey.expires_at > now),
    )


def _new_access_key_id() -> str:
    random = base64.b32encode(secrets.token_bytes(15)).decode("ascii")  # 24 characters, 120 bits
    return PREFIX + random[: ACCESS_KEY_ID_LENGTH - len(PREFIX)]


def _aad(access_key_id: str) -> bytes:
    """The associated data a key's sealed secret is bound to: its access key id."""
    return f"entrepot-s3-access-key\n{access_key_id}".encode("ascii")


def _shown(access_key_id: str) -> str:
    return repr(access_key_id[:64])


def _unknown(message: str = "the access key id does not exist") -> Unauthenticated:
    return Unauthenticated(message, code="s3.invalidAccessKeyId")


def _view(row: S3AccessKey, *, secret: str | None = None) -> AccessKeyView:
    return AccessKeyView(
        access_key_id=row.access_key_id,
        token_id=row.token_id,
        description=row.description,
        created_at=row.created_at,
        last_used_at=row.last_used_at,
        expires_at=row.expires_at,
        secret_access_key=secret,
    )
