"""The CARTO platform of a project (``client.carto``): API keys, imports, datasets and sync tables.

``client.carto.import_file("stores.csv")`` uploads a file to the Import API (``api/v1/imports``)
and answers an ``ImportJob`` at once; ``job.wait(on_state=...)`` follows it through CARTO's
states (``pending``, ``unpacking``, ``importing``, ``guessing``, then ``complete`` or
``failure``) and raises ``ImportFailed`` (CARTO's ``error_code`` and message) on failure.
``client.carto.api_keys`` speaks the Auth API (``api/v3/api_keys``), ``client.carto.datasets``
the datasets of ``api/v1/viz``, ``client.carto.sync_tables`` ``api/v1/synchronizations`` and
``client.carto.maps`` the Maps API (``api/v1/map``, ``client/maps.py``).

Requests go to the root paths (``/api/v1/...``) with the client's token: the server takes the
project from the token. Answers are frozen dataclasses; ``raw`` keeps the server's whole JSON.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Generic, Protocol, TypeVar, overload
from urllib.parse import quote

from entrepot.client._http import Transport
from entrepot.client.errors import ImportFailed, JobTimeout
from entrepot.client.maps import Maps

IMPORTS_PATH = "/api/v1/imports"
KEYS_PATH = "/api/v3/api_keys"
VIZ_PATH = "/api/v1/viz"
SYNC_PATH = "/api/v1/synchronizations"

IMPORT_STATES = ("pending", "unpacking", "importing", "guessing", "complete", "failure")
SYNC_STATES = ("queued", "syncing", "success", "failure")
KEY_TYPES = ("master", "default", "regular")
PRIVACIES = ("private", "public", "link")
KEYS_PER_PAGE = 100
DATASETS_PER_PAGE = 100

FileSource = str | os.PathLike[str] | bytes | IO[bytes]


def _id(value: Any) -> str:
    return quote(str(value), safe="")


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


# -- API keys ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class TableGrant:
    """A table a key may use: ``schema`` (``public`` or a bucket id), ``name``, ``permissions``
    (``select``, ``insert``, ``update``, ``delete``)."""

    schema: str
    name: str
    permissions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"schema": self.schema, "name": self.name, "permissions": list(self.permissions)}


@dataclass(frozen=True)
class SchemaGrant:
    """A schema a key may create tables in (``permissions``: ``("create",)``)."""

    name: str
    permissions: tuple[str, ...] = ("create",)

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "permissions": list(self.permissions)}


@dataclass(frozen=True)
class ApiKey:
    """A CARTO API key: ``type`` is ``master``, ``default`` or ``regular``; ``token`` is None
    where the server does not show it (a regular key listed by the master key)."""

    name: str
    type: str
    token: str | None
    apis: tuple[str, ...]
    tables: tuple[TableGrant, ...]
    schemas: tuple[SchemaGrant, ...]
    services: tuple[str, ...]
    created_at: str | None
    updated_at: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> ApiKey:
        apis: list[str] = []
        tables: list[TableGrant] = []
        schemas: list[SchemaGrant] = []
        services: list[str] = []
        for grant in body.get("grants") or []:
            kind = grant.get("type")
            if kind == "apis":
                apis += grant.get("apis") or []
            elif kind == "database":
                tables += [
                    TableGrant(t["schema"], t["name"], tuple(t.get("permissions") or ()))
                    for t in grant.get("tables") or []
                ]
                schemas += [
                    SchemaGrant(s["name"], tuple(s.get("permissions") or ()))
                    for s in grant.get("schemas") or []
                ]
            elif kind == "dataservices":
                services += grant.get("services") or []
        return cls(
            name=str(body["name"]),
            type=str(body["type"]),
            token=_opt_str(body.get("token")),
            apis=tuple(apis),
            tables=tuple(tables),
            schemas=tuple(schemas),
            services=tuple(services),
            created_at=_opt_str(body.get("created_at")),
            updated_at=_opt_str(body.get("updated_at")),
            raw=dict(body),
        )


def _grant(value: TableGrant | SchemaGrant | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(value, TableGrant | SchemaGrant):
        return value.to_json()
    return dict(value)


class ApiKeys:
    """CARTO's Auth API (``api/v3/api_keys``); managing keys needs the project's master token."""

    def __init__(self, http: Transport):
        self._http = http

    def list(self, type: str | Iterable[str] | None = None) -> list[ApiKey]:
        """Every key of the project (all pages), optionally of some types (``master``, ``default``, ``regular``)."""
        params: dict[str, Any] = {"per_page": KEYS_PER_PAGE}
        if type is not None:
            params["type"] = type if isinstance(type, str) else ",".join(type)
        keys: list[ApiKey] = []
        page = 1
        while True:
            body = self._http.json("GET", KEYS_PATH, params={**params, "page": page})
            keys += [ApiKey.from_json(k) for k in body.get("result") or []]
            if "next" not in (body.get("_links") or {}) or not body.get("result"):
                return keys
            page += 1

    def get(self, name: str) -> ApiKey:
        """A key by name (``NotFound`` when there is none)."""
        return ApiKey.from_json(self._http.json("GET", f"{KEYS_PATH}/{_id(name)}"))

    def create(
        self,
        name: str,
        *,
        apis: Iterable[str] = ("sql",),
        tables: Iterable[TableGrant | Mapping[str, Any]] = (),
        schemas: Iterable[SchemaGrant | Mapping[str, Any]] = (),
        services: Iterable[str] = (),
    ) -> ApiKey:
        """A regular key with grants; its ``token`` is in the answer. A bad grant or a taken name
        raises ``InvalidRequest`` (422) with the server's message."""
        grants: list[dict[str, Any]] = [{"type": "apis", "apis": list(apis)}]
        database = {
            "type": "database",
            "tables": [_grant(t) for t in tables],
            "schemas": [_grant(s) for s in schemas],
        }
        if database["tables"] or database["schemas"]:
            grants.append(database)
        services = list(services)
        if services:
            grants.append({"type": "dataservices", "services": services})
        body = self._http.json("POST", KEYS_PATH, json={"name": name, "grants": grants})
        return ApiKey.from_json(body)

    def regenerate(self, name: str) -> ApiKey:
        """A new token for the key (answered); the old one stops working at once."""
        return ApiKey.from_json(self._http.json("POST", f"{KEYS_PATH}/{_id(name)}/token/regenerate"))

    def delete(self, name: str) -> None:
        """Delete a regular key (its token is revoked); the master and default keys cannot be deleted."""
        self._http.request("DELETE", f"{KEYS_PATH}/{_id(name)}")


# -- imports -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Import:
    """An import's state: ``dataset_id`` is the (first) dataset's id once ``complete``;
    ``error_code``, ``error_title`` and ``error_message`` are CARTO's once it is a ``failure``."""

    id: str
    state: str
    success: bool | None
    table_name: str | None
    table_id: str | None
    dataset_id: str | None
    tables_created: int
    error_code: int | None
    error_title: str | None
    error_message: str | None
    original_url: str | None
    display_name: str | None
    created_at: str | None
    updated_at: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.state in ("complete", "failure")

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Import:
        text = body.get("get_error_text") or {}
        code = body.get("error_code")
        return cls(
            id=str(body.get("id") or body.get("item_queue_id")),
            state=str(body.get("state")),
            success=body.get("success"),
            table_name=_opt_str(body.get("table_name")),
            table_id=_opt_str(body.get("table_id")),
            dataset_id=_opt_str(body.get("visualization_id")),
            tables_created=int(body.get("tables_created_count") or 0),
            error_code=None if code is None else int(code),
            error_title=_opt_str(text.get("title")),
            error_message=_opt_str(text.get("what_about")),
            original_url=_opt_str(body.get("original_url")),
            display_name=_opt_str(body.get("display_name")),
            created_at=_opt_str(body.get("created_at")),
            updated_at=_opt_str(body.get("updated_at")),
            raw=dict(body),
        )


class _State(Protocol):
    @property
    def state(self) -> str: ...

    @property
    def raw(self) -> dict[str, Any]: ...


T = TypeVar("T", bound=_State)


class _Followed(Generic[T]):
    """Something that runs on the server and ends in a final state: polled by ``wait``."""

    _final: tuple[str, ...] = ()
    _failure = "failure"

    def __init__(self, id: str, last: T | None = None):
        self.id = id
        self.last = last

    def refresh(self) -> T:
        raise NotImplementedError

    def _error(self, last: T) -> ImportFailed:
        raise NotImplementedError

    def wait(
        self,
        timeout: float | None = None,
        on_state: Callable[[T], None] | None = None,
        poll_initial: float = 0.05,
        poll_max: float = 2.0,
    ) -> T:
        """Poll until the end; answer the final state, or raise ``ImportFailed`` on ``failure``.

        ``on_state(state)`` is called on every change of state (the final one included).
        ``JobTimeout`` after ``timeout`` seconds (the work goes on on the server).
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        delay = max(0.0, poll_initial)
        seen: str | None = None
        while True:
            last = self.refresh()
            state = last.state
            if state != seen:
                seen = state
                if on_state is not None:
                    on_state(last)
            else:
                delay = min(poll_max, max(delay * 1.5, 0.01))
            if state == self._failure:
                raise self._error(last)
            if state in self._final:
                return last
            pause = delay
            if deadline is not None:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise JobTimeout(last.raw, timeout or 0.0)
                pause = min(pause, remaining)
            time.sleep(pause)


class ImportJob(_Followed[Import]):
    """An import queued on the server: ``refresh()`` reads its state, ``wait()`` follows it."""

    _final = ("complete",)

    def __init__(self, carto: Carto, id: str):
        super().__init__(id)
        self._carto = carto

    def refresh(self) -> Import:
        self.last = self._carto.get_import(self.id)
        return self.last

    def _error(self, last: Import) -> ImportFailed:
        message = last.error_message or last.error_title or "the import failed"
        return ImportFailed(last, last.error_code, message)

    def __repr__(self) -> str:
        return f"ImportJob({self.id!r}, state={self.last.state if self.last else None!r})"


def _import_params(
    *,
    table_name: str | None,
    privacy: str | None,
    create_vis: bool | None,
    type_guessing: bool | None,
    quoted_fields_guessing: bool | None,
    content_guessing: bool | None,
) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if table_name is not None:
        params["table_name"] = table_name
    if privacy is not None:
        params["privacy"] = privacy.lower()
    for name, value in (
        ("create_vis", create_vis),
        ("type_guessing", type_guessing),
        ("quoted_fields_guessing", quoted_fields_guessing),
        ("content_guessing", content_guessing),
    ):
        if value is not None:
            params[name] = "true" if value else "false"
    return params


# -- datasets ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Dataset:
    """A dataset (a table of the default schema); ``privacy`` is ``private``, ``public`` or ``link``."""

    id: str
    name: str
    privacy: str
    description: str | None
    tags: tuple[str, ...]
    display_name: str | None
    row_count: int | None
    size: int | None
    geometry: bool
    url: str | None
    created_at: str | None
    updated_at: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> Dataset:
        table = body.get("table") or {}
        return cls(
            id=str(body["id"]),
            name=str(body["name"]),
            privacy=str(body.get("privacy") or "").lower(),
            description=_opt_str(body.get("description")),
            tags=tuple(str(t) for t in body.get("tags") or ()),
            display_name=_opt_str(body.get("display_name")),
            row_count=table.get("row_count"),
            size=table.get("size"),
            geometry=body.get("kind") == "geom",
            url=_opt_str(body.get("url")),
            created_at=_opt_str(body.get("created_at")),
            updated_at=_opt_str(body.get("updated_at")),
            raw=dict(body),
        )


class Datasets:
    """Datasets (``api/v1/viz?type=table``): the tables of the default schema the token may read."""

    def __init__(self, http: Transport):
        self._http = http

    def list(self) -> list[Dataset]:
        """Every dataset the token may read (all pages), newest change first."""
        found: list[Dataset] = []
        page = 1
        while True:
            body = self._http.json(
                "GET", VIZ_PATH, params={"type": "table", "page": page, "per_page": DATASETS_PER_PAGE}
            )
            batch = body.get("visualizations") or []
            found += [Dataset.from_json(v) for v in batch]
            if not batch or len(found) >= int(body.get("total_entries") or 0):
                return found
            page += 1

    def get(self, id_or_name: str) -> Dataset:
        """A dataset by id or name (``NotFound`` when there is none)."""
        return Dataset.from_json(
            self._http.json("GET", f"{VIZ_PATH}/{_id(id_or_name)}", params={"type": "table"})
        )

    def update(
        self,
        id_or_name: str,
        *,
        privacy: str | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        display_name: str | None = None,
    ) -> Dataset:
        """Change a dataset's privacy (``private``, ``public``, ``link``), description, tags or
        display name; what is None stays. Answers the dataset."""
        body: dict[str, Any] = {}
        if privacy is not None:
            if privacy.lower() not in PRIVACIES:
                raise ValueError(f"privacy must be one of {', '.join(PRIVACIES)}, not {privacy!r}")
            body["privacy"] = privacy.upper()
        if description is not None:
            body["description"] = description
        if tags is not None:
            body["tags"] = list(tags)
        if display_name is not None:
            body["display_name"] = display_name
        if not body:  # nothing to change
            return self.get(id_or_name)
        return Dataset.from_json(self._http.json("PUT", f"{VIZ_PATH}/{_id(id_or_name)}", json=body))

    def delete(self, id_or_name: str) -> None:
        """Delete a dataset: its table is dropped."""
        self._http.request("DELETE", f"{VIZ_PATH}/{_id(id_or_name)}")


# -- sync tables -------------------------------------------------------------------------------
@dataclass(frozen=True)
class SyncTable:
    """A sync table: ``state`` is ``queued``, ``syncing``, ``success`` or ``failure``;
    ``dataset_id`` is its dataset's id once a run created it."""

    id: str
    name: str
    url: str
    interval: int
    state: str
    dataset_id: str | None
    error_code: int | None
    error_message: str | None
    retried_times: int
    run_at: str | None
    ran_at: str | None
    modified_at: str | None
    created_at: str | None
    raw: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    @property
    def done(self) -> bool:
        return self.state in ("success", "failure")

    @classmethod
    def from_json(cls, body: Mapping[str, Any]) -> SyncTable:
        code = body.get("error_code")
        return cls(
            id=str(body["id"]),
            name=str(body.get("name")),
            url=str(body.get("url")),
            interval=int(body.get("interval") or 0),
            state=str(body.get("state")),
            dataset_id=_opt_str(body.get("visualization_id")),
            error_code=None if code is None else int(code),
            error_message=_opt_str(body.get("error_message")),
            retried_times=int(body.get("retried_times") or 0),
            run_at=_opt_str(body.get("run_at")),
            ran_at=_opt_str(body.get("ran_at")),
            modified_at=_opt_str(body.get("modified_at")),
            created_at=_opt_str(body.get("created_at")),
            raw=dict(body),
        )


class SyncJob(_Followed[SyncTable]):
    """A sync table's run in progress: ``wait()`` follows it to ``success`` or ``failure``."""

    _final = ("success",)

    def __init__(self, syncs: SyncTables, sync: SyncTable):
        super().__init__(sync.id, sync)
        self._syncs = syncs

    def refresh(self) -> SyncTable:
        self.last = self._syncs.get(self.id)
        return self.last

    def _error(self, last: SyncTable) -> ImportFailed:
        return ImportFailed(last, last.error_code, last.error_message or "the sync table's run failed")

    def __repr__(self) -> str:
        return f"SyncJob({self.id!r}, state={self.last.state if self.last else None!r})"


class SyncTables:
    """Sync tables (``api/v1/synchronizations``): datasets re-imported from a URL every ``interval`` seconds."""

    def __init__(self, http: Transport):
        self._http = http

    def create(
        self,
        url: str,
        *,
        interval: int | None = None,
        table_name: str | None = None,
        type_guessing: bool | None = None,
        quoted_fields_guessing: bool | None = None,
        content_guessing: bool | None = None,
    ) -> SyncJob:
        """Create a sync table and queue its first run; ``wait()`` on the answer follows that run.

        ``interval`` is in seconds (server default 3600, at least 900); a URL the server's URL
        guard refuses raises ``InvalidRequest`` here.
        """
        body: dict[str, Any] = {"url": url}
        if interval is not None:
            body["interval"] = interval
        if table_name is not None:
            body["table_name"] = table_name
        for name, value in (
            ("type_guessing", type_guessing),
            ("quoted_fields_guessing", quoted_fields_guessing),
            ("content_guessing", content_guessing),
        ):
            if value is not None:
                body[name] = value
        return SyncJob(self, SyncTable.from_json(self._http.json("POST", SYNC_PATH, json=body)))

    def list(self) -> list[SyncTable]:
        """Every sync table the token sees (a master token: all of the project's), newest change first."""
        found: list[SyncTable] = []
        page = 1
        while True:
            body = self._http.json("GET", SYNC_PATH, params={"page": page})
            batch = body.get("synchronizations") or []
            found += [SyncTable.from_json(s) for s in batch]
            if not batch or len(found) >= int(body.get("total_entries") or 0):
                return found
            page += 1

    def get(self, sync_id: str) -> SyncTable:
        return SyncTable.from_json(self._http.json("GET", f"{SYNC_PATH}/{_id(sync_id)}"))

    def sync_now(self, sync_id: str) -> bool:
        """Ask for a run now; False when refused (a run queued or running, or the last one less
        than 900 s old)."""
        body = self._http.json("PUT", f"{SYNC_PATH}/{_id(sync_id)}/sync_now")
        return bool(body.get("enqueued"))

    def follow(self, sync_id: str) -> SyncJob:
        """A handle on the sync table's current run, to ``wait()`` for it (after ``sync_now``)."""
        return SyncJob(self, self.get(sync_id))

    def delete(self, sync_id: str) -> None:
        """Stop syncing; the table stays, as a plain dataset."""
        self._http.request("DELETE", f"{SYNC_PATH}/{_id(sync_id)}")


# -- the namespace -----------------------------------------------------------------------------
class Carto:
    """The CARTO platform of the token's project: ``import_file``, ``import_url``, ``get_import``,
    and ``api_keys``, ``datasets``, ``sync_tables``, ``maps``."""

    def __init__(self, http: Transport):
        self._http = http
        self.api_keys = ApiKeys(http)
        self.datasets = Datasets(http)
        self.sync_tables = SyncTables(http)
        self.maps = Maps(http)

    def import_file(
        self,
        source: FileSource,
        *,
        filename: str | None = None,
        table_name: str | None = None,
        privacy: str | None = None,
        create_vis: bool | None = None,
        type_guessing: bool | None = None,
        quoted_fields_guessing: bool | None = None,
        content_guessing: bool | None = None,
    ) -> ImportJob:
        """Upload a file (a path, bytes or a binary file object) to the Import API; answers at once.

        The format comes from the file's name: ``filename`` names bytes or a file object without
        one (``data.csv`` by default). The table is named ``table_name``, else after the file.
        """
        params = _import_params(
            table_name=table_name,
            privacy=privacy,
            create_vis=create_vis,
            type_guessing=type_guessing,
            quoted_fields_guessing=quoted_fields_guessing,
            content_guessing=content_guessing,
        )
        if isinstance(source, str | os.PathLike):
            path = Path(source)
            with path.open("rb") as f:
                body = self._http.json(
                    "POST", IMPORTS_PATH, params=params, files={"file": (filename or path.name, f)}
                )
        else:
            name = filename or Path(str(getattr(source, "name", "") or "data.csv")).name
            content = bytes(source) if isinstance(source, bytes | bytearray | memoryview) else source
            body = self._http.json("POST", IMPORTS_PATH, params=params, files={"file": (name, content)})
        return ImportJob(self, str(body["item_queue_id"]))

    @overload
    def import_url(
        self,
        url: str,
        *,
        sync_interval: None = None,
        table_name: str | None = ...,
        privacy: str | None = ...,
        create_vis: bool | None = ...,
        type_guessing: bool | None = ...,
        quoted_fields_guessing: bool | None = ...,
        content_guessing: bool | None = ...,
    ) -> ImportJob: ...

    @overload
    def import_url(
        self,
        url: str,
        *,
        sync_interval: int,
        table_name: str | None = ...,
        privacy: None = None,
        create_vis: None = None,
        type_guessing: bool | None = ...,
        quoted_fields_guessing: bool | None = ...,
        content_guessing: bool | None = ...,
    ) -> SyncJob: ...

    def import_url(
        self,
        url: str,
        *,
        sync_interval: int | None = None,
        table_name: str | None = None,
        privacy: str | None = None,
        create_vis: bool | None = None,
        type_guessing: bool | None = None,
        quoted_fields_guessing: bool | None = None,
        content_guessing: bool | None = None,
    ) -> ImportJob | SyncJob:
        """Import what ``url`` answers; the server downloads it (through its URL guard).

        With ``sync_interval`` (seconds) the import is a sync table, re-imported that often:
        the answer is then a ``SyncJob`` whose ``wait()`` follows the first run (its states
        are the sync's: ``queued``, ``syncing``, ``success``, ``failure``); a sync table's
        dataset starts private (``privacy`` and ``create_vis`` are not accepted with it).
        """
        if sync_interval is not None:
            if privacy is not None or create_vis is not None:
                raise ValueError("privacy and create_vis do not apply to a sync table (sync_interval)")
            return self.sync_tables.create(
                url,
                interval=sync_interval,
                table_name=table_name,
                type_guessing=type_guessing,
                quoted_fields_guessing=quoted_fields_guessing,
                content_guessing=content_guessing,
            )
        params = _import_params(
            table_name=table_name,
            privacy=privacy,
            create_vis=create_vis,
            type_guessing=type_guessing,
            quoted_fields_guessing=quoted_fields_guessing,
            content_guessing=content_guessing,
        )
        body = self._http.json("POST", IMPORTS_PATH, json={**params, "url": url})
        return ImportJob(self, str(body["item_queue_id"]))

    def get_import(self, import_id: str) -> Import:
        """An import's current state (``NotFound`` for an unknown id)."""
        return Import.from_json(self._http.json("GET", f"{IMPORTS_PATH}/{_id(import_id)}"))

    def follow(self, import_id: str) -> ImportJob:
        """A handle on an import queued earlier (by id), to ``wait()`` for it."""
        return ImportJob(self, str(import_id))

    def imports(self) -> list[str]:
        """The ids of the project's recent imports the token may see, newest first."""
        body = self._http.json("GET", IMPORTS_PATH)
        return [str(i) for i in body.get("imports") or []]
