"""Object-space commands over HTTP (the SDK's ``DataClient``): spaces, ls, cp, rm, presign.

Remote objects are written ``SPACE:KEY`` (``public:my_dir/my_file.txt``); anything else is a
local path (write ``./a:b`` for a local file whose name looks like ``space:key``). The server
is ``--url``/``ENTREPOT_URL`` (default http://127.0.0.1:8000), the token
``--token``/``ENTREPOT_TOKEN`` (none: anonymous, public spaces only), the project
``--project``/``ENTREPOT_PROJECT`` (default: the token's, else ``default``).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.filesize import decimal
from rich.markup import escape
from rich.progress import Progress
from rich.table import Table

from entrepot.cli.options import AsJson, Col, Wide, err, out, print_json, print_table, progress_columns
from entrepot.cli.options import fail as _fail

if TYPE_CHECKING:
    from entrepot.client.data import DataClient, Storage, TransferHandler

spaces = typer.Typer(help="Object spaces of a running server: list, create, delete.", no_args_is_help=True)

Url = Annotated[
    str | None,
    typer.Option(
        "--url", envvar="ENTREPOT_URL", help="Server URL (default http://127.0.0.1:8000).", show_envvar=True
    ),
]
Token = Annotated[
    str | None,
    typer.Option("--token", envvar="ENTREPOT_TOKEN", help="API token (none: anonymous).", show_envvar=True),
]
Project = Annotated[
    str | None,
    typer.Option(
        "--project",
        envvar="ENTREPOT_PROJECT",
        help="Project name or id (default: the token's).",
        show_envvar=True,
    ),
]
Recursive = Annotated[
    bool, typer.Option("--recursive", "-r", help="Every object under the prefix / every file.")
]

_REMOTE_RE = re.compile(r"^([a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?):(.*)\Z", re.DOTALL)
_DURATION_RE = re.compile(r"^(\d+)\s*([smhdw]?)\Z")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


@dataclass(frozen=True)
class Remote:
    space: str
    key: str

    def __str__(self) -> str:
        return f"{self.space}:{self.key}"


def parse_remote(value: str) -> Remote | None:
    """``SPACE:KEY`` as a Remote (the key without leading '/'); None for a local path."""
    m = _REMOTE_RE.match(value)
    return Remote(m.group(1), m.group(2).lstrip("/")) if m else None


def parse_duration(value: str) -> int:
    """Seconds of ``3600``, ``90s``, ``15m``, ``1h``, ``7d`` or ``2w``."""
    m = _DURATION_RE.match(value.strip().lower())
    if m is None or int(m.group(1)) <= 0:
        raise typer.BadParameter(f"{value!r} is not a duration such as 3600, 90s, 15m, 1h or 7d")
    return int(m.group(1)) * _UNITS[m.group(2)]


def _folder(prefix: str) -> str:
    return prefix if not prefix or prefix.endswith("/") else prefix + "/"


@contextmanager
def _client(url: str | None, token: str | None, project: str | None, **options: Any) -> Iterator[DataClient]:
    """A DataClient (its errors end at the CLI's one error exit, ``options.Commands``)."""
    from entrepot.client import DataClient

    with DataClient(token or None, url=url, project=project, **options) as client:
        yield client


def _modified(value: datetime | None) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if value else ""


# -- spaces ----------------------------------------------------------------------------------
@spaces.command("list")
def spaces_list(
    url: Url = None,
    token: Token = None,
    project: Project = None,
    as_json: AsJson = False,
    wide: Wide = False,
) -> None:
    """List the spaces you can read, with their size."""
    with _client(url, token, project) as client:
        rows = client.spaces()
    if as_json:
        print_json(rows)
        return
    columns = [
        Col("name", "name"),
        Col("public", lambda s: bool(s.get("public"))),
        Col("access", "access"),
        Col("objects", "objects", "number"),
        Col("size", lambda s: decimal(int(s.get("bytes") or 0)), "number"),
        Col("expires", "expiresAt", "time"),
        Col("description", "description", "long"),
    ]
    print_table(rows, columns, wide=wide)


@spaces.command("create")
def spaces_create(
    name: str,
    public: Annotated[bool, typer.Option("--public", help="Anyone may read it without a token.")] = False,
    description: Annotated[str, typer.Option(help="Free text.")] = "",
    expires: Annotated[
        str | None, typer.Option(help="Read-only after this: a duration (30d) or an ISO time with zone.")
    ] = None,
    url: Url = None,
    token: Token = None,
    project: Project = None,
    as_json: AsJson = False,
) -> None:
    """Create a space (needs a token that may manage spaces) and print its name (with --json, the space)."""
    expires_at: str | None = None
    if expires:
        if _DURATION_RE.match(expires.strip().lower()):
            when = datetime.now(UTC) + timedelta(seconds=parse_duration(expires))
            expires_at = when.isoformat(timespec="seconds")
        else:
            expires_at = expires
    with _client(url, token, project) as client:
        created = client.create_space(name, description=description, public=public, expires_at=expires_at)
    if as_json:
        print_json(created)
    else:
        print(created["name"])


@spaces.command("delete")
def spaces_delete(
    name: str,
    force: Annotated[bool, typer.Option("--force", help="Delete its objects too.")] = False,
    url: Url = None,
    token: Token = None,
    project: Project = None,
) -> None:
    """Delete a space (it must be empty unless --force)."""
    with _client(url, token, project) as client:
        client.delete_space(name, force=force)
    err.print(f"deleted space {name}")


# -- ls ---------------------------------------------------------------------------------------
def ls(
    target: Annotated[
        str | None, typer.Argument(help="SPACE or SPACE:PREFIX; nothing lists the spaces.")
    ] = None,
    recursive: Recursive = False,
    url: Url = None,
    token: Token = None,
    project: Project = None,
    as_json: AsJson = False,
    wide: Wide = False,
) -> None:
    """List the folders and objects at one level of a space (every object below with -r)."""
    if target is None:
        spaces_list(url=url, token=token, project=project, as_json=as_json, wide=wide)
        return
    remote = parse_remote(target) or (parse_remote(target + ":") if ":" not in target else None)
    if remote is None:
        raise _fail(f"{target!r} is not SPACE or SPACE:PREFIX", 2)
    with _client(url, token, project) as client:
        storage = client.storage(remote.space)
        folders: list[str] = []
        if recursive:
            objects = list(storage.iter_objects(remote.key))
        else:
            listing = storage.list_folder(_folder(remote.key))
            folders, objects = listing.folders, listing.objects
            if remote.key and not remote.key.endswith("/") and not folders and not objects:
                if not storage.exists(remote.key):
                    raise _fail(f"no object or folder {remote}")
                objects = [storage.head(remote.key)]
    if as_json:
        rows: list[dict[str, Any]] = [{"key": f, "folder": True} for f in folders]
        rows += [{**o.to_json(), "folder": False} for o in objects]
        print_json(rows)
        return
    table = Table("key", "size", "last modified (UTC)", box=None, pad_edge=False)
    for f in folders:
        table.add_row(f"[bold blue]{escape(f)}[/bold blue]", "", "")
    for o in objects:
        table.add_row(escape(o.key), decimal(o.size), _modified(o.last_modified))
    out.print(table)
    err.print(f"{len(folders)} folder(s), {len(objects)} object(s)")


# -- cp ---------------------------------------------------------------------------------------
@dataclass
class _Job:
    label: str
    start: Callable[[Callable[[TransferHandler], None]], TransferHandler]


class _Transfers:
    """Runs transfers with at most ``jobs`` at once, one progress bar (with speed) each."""

    def __init__(self, progress: Progress, jobs: int):
        self.progress = progress
        self.jobs = max(1, jobs)
        self.running: list[tuple[_Job, TransferHandler]] = []
        self.failures: list[str] = []
        self.done = 0
        self.bytes = 0

    def run(self, job: _Job) -> None:
        while len(self.running) >= self.jobs:
            self._wait(self.running.pop(0))
        task = self.progress.add_task(job.label, total=None, unit="bytes")
        removed = False

        def update(handler: TransferHandler) -> None:
            nonlocal removed
            if removed:
                return
            p = handler.progress
            self.progress.update(task, completed=p.transferred, total=p.total)
            if handler.status.done:
                removed = True
                self.progress.remove_task(task)

        try:
            handler = job.start(update)
        except (OSError, ValueError) as exc:  # e.g. a file that vanished since it was listed
            self.progress.remove_task(task)
            self._failed(job, exc)
            return
        self.running.append((job, handler))

    def _failed(self, job: _Job, exc: BaseException) -> None:
        self.failures.append(f"{job.label}: {exc}")
        err.print(f"[red]failed:[/red] {escape(f'{job.label}: {exc}')}", soft_wrap=True, highlight=False)

    def finish(self) -> None:
        while self.running:
            self._wait(self.running.pop(0))

    def _wait(self, item: tuple[_Job, TransferHandler]) -> None:
        from entrepot.client import APIError

        job, handler = item
        try:
            handler.join()
        except APIError as exc:
            self._failed(job, exc)
            return
        self.done += 1
        self.bytes += handler.progress.transferred
        # the file's bar is gone (cp -r shows only running transfers): its line keeps the final size
        err.print(
            f"{job.label} ({decimal(handler.progress.transferred)})",
            soft_wrap=True,
            highlight=False,
            markup=False,
        )


@contextmanager
def _transfers(jobs: int) -> Iterator[_Transfers]:
    with Progress(*progress_columns(), console=err, transient=True) as progress:
        runner = _Transfers(progress, jobs)
        try:
            yield runner
            runner.finish()
        except BaseException:
            for _, handler in runner.running:
                handler.abort()
            raise


def _local_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file())


def _join_key(prefix: str, name: str) -> str:
    return f"{prefix.rstrip('/')}/{name}" if prefix.strip("/") else name


def _upload_jobs(storage: Storage, source: Path, dest: Remote, recursive: bool) -> list[_Job]:
    if source.is_dir():
        if not recursive:
            raise _fail(f"{source} is a folder: add -r to copy the files in it", 2)
        files = _local_files(source)
        if not files:
            raise _fail(f"{source} holds no files")
        pairs = [(f, _join_key(dest.key, f.relative_to(source).as_posix())) for f in files]
    elif source.is_file():
        key = dest.key if dest.key and not dest.key.endswith("/") else _join_key(dest.key, source.name)
        pairs = [(source, key)]
    else:
        raise _fail(f"no such file or folder: {source}")

    def start(path: Path, key: str) -> Callable[[Callable[[TransferHandler], None]], TransferHandler]:
        def go(cb: Callable[[TransferHandler], None]) -> TransferHandler:
            return storage.upload(path, key, callback=cb)

        return go

    return [_Job(f"{f} → {dest.space}:{key}", start(f, key)) for f, key in pairs]


def _download_jobs(storage: Storage, source: Remote, dest: str, recursive: bool) -> list[_Job]:
    if dest == "-":
        if recursive:
            raise _fail("-r cannot write to stdout", 2)
        return [
            _Job(
                f"{source} → stdout", lambda cb: storage.download(source.key, sys.stdout.buffer, callback=cb)
            )
        ]
    target = Path(dest)
    if recursive:
        prefix = _folder(source.key)
        items = list(storage.iter_objects(prefix))
        if not items:
            raise _fail(f"no objects under {source.space}:{prefix}")
        pairs = [(item.key, target / item.key[len(prefix) :]) for item in items]
    else:
        if not source.key:
            raise _fail(f"{source} names no object (add a key, or -r for the whole space)", 2)
        path = (
            target / source.key.rsplit("/", 1)[-1]
            if target.is_dir() or dest.endswith(("/", os.sep))
            else target
        )
        pairs = [(source.key, path)]

    def start(key: str, path: Path) -> Callable[[Callable[[TransferHandler], None]], TransferHandler]:
        def go(cb: Callable[[TransferHandler], None]) -> TransferHandler:
            path.parent.mkdir(parents=True, exist_ok=True)
            return storage.download(key, path, force=True, callback=cb)

        return go

    return [_Job(f"{source.space}:{key} → {path}", start(key, path)) for key, path in pairs]


def _copy_jobs(client: DataClient, source: Remote, dest: Remote, recursive: bool) -> list[tuple[str, str]]:
    src = client.storage(source.space)
    if recursive:
        prefix = _folder(source.key)
        keys = src.list_objects(prefix)
        if not keys:
            raise _fail(f"no objects under {source.space}:{prefix}")
        return [(k, _join_key(dest.key, k[len(prefix) :])) for k in keys]
    if not source.key:
        raise _fail(f"{source} names no object", 2)
    name = source.key.rsplit("/", 1)[-1]
    return [(source.key, dest.key if dest.key and not dest.key.endswith("/") else _join_key(dest.key, name))]


def cp(
    source: Annotated[str, typer.Argument(help="A local path or SPACE:KEY.")],
    destination: Annotated[str, typer.Argument(help="A local path (- for stdout) or SPACE:KEY.")],
    recursive: Recursive = False,
    jobs: Annotated[int, typer.Option("--jobs", "-j", help="Files transferred at once.")] = 4,
    url: Url = None,
    token: Token = None,
    project: Project = None,
) -> None:
    """Copy files to a space, objects to local files, or objects between spaces.

    A destination key ending in '/' (or a local folder) gets the source's name.
    With -r, a local folder's files go under the key prefix, and the objects
    under a prefix go into a local folder. Large files go in parallel parts and
    resume after an interruption. Existing local files are replaced.
    """
    src, dst = parse_remote(source), parse_remote(destination)
    if src is None and dst is None:
        raise _fail("one side must be SPACE:KEY (use cp for local copies)", 2)
    with _client(url, token, project, max_transfers=max(1, jobs)) as client:
        if src is not None and dst is not None:
            pairs = _copy_jobs(client, src, dst, recursive)
            target = client.storage(dst.space)
            for key, new_key in pairs:
                target.copy(key, new_key, source_space=src.space)
                err.print(f"{src.space}:{key} → {dst.space}:{new_key}", soft_wrap=True, markup=False)
            return
        if dst is not None:
            assert src is None
            job_list = _upload_jobs(client.storage(dst.space), Path(source), dst, recursive)
        else:
            assert src is not None
            job_list = _download_jobs(client.storage(src.space), src, destination, recursive)
        with _transfers(jobs) as runner:
            for job in job_list:
                runner.run(job)
        if len(job_list) > 1:
            err.print(f"{runner.done} of {len(job_list)} file(s) copied, {decimal(runner.bytes)}")
        if runner.failures:
            raise typer.Exit(1)


# -- rm ---------------------------------------------------------------------------------------
def rm(
    target: Annotated[str, typer.Argument(help="SPACE:KEY, or SPACE:PREFIX with -r.")],
    recursive: Recursive = False,
    url: Url = None,
    token: Token = None,
    project: Project = None,
) -> None:
    """Delete an object, or with -r every object under a prefix (a folder)."""
    remote = parse_remote(target)
    if remote is None:
        raise _fail(f"{target!r} is not SPACE:KEY", 2)
    with _client(url, token, project) as client:
        storage = client.storage(remote.space)
        if not recursive:
            if not remote.key:
                raise _fail(f"{target} names no object (add -r to delete everything in the space)", 2)
            storage.delete(remote.key)
            err.print(f"deleted {remote}")
            return
        prefix = _folder(remote.key)
        keys = storage.list_objects(prefix)
        if not keys:
            raise _fail(f"no objects under {remote.space}:{prefix}")
        for key in keys:
            storage.delete(key)
        err.print(f"deleted {len(keys)} object(s) under {remote.space}:{prefix}")


# -- presign ----------------------------------------------------------------------------------
def presign(
    target: Annotated[str, typer.Argument(help="SPACE:KEY (SPACE:PREFIX for --method LIST).")],
    expires: Annotated[str, typer.Option(help="Lifetime: 3600, 90s, 15m, 1h, 7d.")] = "1h",
    method: Annotated[str, typer.Option(help="GET, HEAD, PUT, DELETE or LIST.")] = "GET",
    url: Url = None,
    token: Token = None,
    project: Project = None,
) -> None:
    """Print a URL that allows one operation on an object without a token, until it expires."""
    remote = parse_remote(target)
    if remote is None:
        raise _fail(f"{target!r} is not SPACE:KEY", 2)
    method = method.upper()
    if method not in ("GET", "HEAD", "PUT", "DELETE", "LIST"):
        raise _fail(f"--method must be GET, HEAD, PUT, DELETE or LIST, not {method}", 2)
    seconds = parse_duration(expires)
    with _client(url, token, project) as client:
        print(client.storage(remote.space).presign(remote.key, method=method, expires=seconds))
