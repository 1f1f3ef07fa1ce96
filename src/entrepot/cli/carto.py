"""``entrepot import``, ``entrepot datasets``, ``entrepot api-keys`` and ``entrepot maps``: the
CARTO platform over HTTP with the SDK's ``client.carto``.

They talk to a running server: ``--url``/``ENTREPOT_URL`` and ``--token``/``ENTREPOT_TOKEN``.
``import`` follows the import through CARTO's states: a Rich progress line on a terminal, one
plain line per state on stderr otherwise; ``--json`` prints the finished import's JSON.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from entrepot.cli.options import AsJson, Col, Token, Url, Wide, err, fail, print_json, print_table
from entrepot.cli.options import api_client as _client

_URL = re.compile(r"^https?://", re.IGNORECASE)
PRIVACIES = ("private", "public", "link")


def _privacy(value: str | None) -> str | None:
    if value is not None and value.lower() not in PRIVACIES:
        raise fail(f"--privacy must be one of {', '.join(PRIVACIES)}, not {value!r}", 2)
    return value.lower() if value is not None else None


@contextmanager
def _state_display(label: str, states: tuple[str, ...]) -> Iterator[Callable[[Any], None]]:
    """The ``on_state`` callback: a Rich bar through ``states`` on a terminal, else a line per state."""
    if not err.is_terminal:

        def line(view: Any) -> None:
            err.print(f"{label}: {view.state}", highlight=False, soft_wrap=True)

        yield line
        return
    steps = len(states) - 2  # the last two are the two ends (success, failure)
    columns = (
        SpinnerColumn(finished_text=" "),
        TextColumn("{task.description}"),
        BarColumn(bar_width=24),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=err) as progress:
        task = progress.add_task(f"{label}: …", total=steps + 1)

        def update(view: Any) -> None:
            description = f"{label}: {view.state}"
            if view.state == states[-1]:  # failure: the bar stays where it stopped
                progress.update(task, description=f"[red]{description}[/red]")
                return
            known = states.index(view.state) if view.state in states else 0
            position = steps + 1 if view.state == states[-2] else known
            progress.update(task, completed=position, description=description)

        yield update


def import_(
    source: Annotated[str, typer.Argument(metavar="FILE|URL", help="A file to upload, or an http(s) URL.")],
    table_name: Annotated[
        str | None, typer.Option("--table-name", help="The new table's name (default: the file's).")
    ] = None,
    privacy: Annotated[
        str | None, typer.Option("--privacy", help="private (default), public or link.")
    ] = None,
    sync_interval: Annotated[
        int | None,
        typer.Option(
            "--sync-interval",
            min=1,
            metavar="SECONDS",
            help="A URL only: make it a sync table, re-imported every SECONDS (at least 900).",
        ),
    ] = None,
    timeout: Annotated[
        float | None, typer.Option("--timeout", min=0, help="Give up waiting after this many seconds.")
    ] = None,
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Import a file or a URL as a new dataset (CARTO's Import API) and wait until it is done.

    Prints the new table's name (--json: the import's, or the sync table's, JSON). A failed
    import prints CARTO's message and error_code and exits 1.
    """
    wanted_privacy = _privacy(privacy)
    is_url = bool(_URL.match(source))
    if sync_interval is not None and not is_url:
        raise fail("--sync-interval needs a URL: only URLs can be synced", 2)
    if sync_interval is not None and wanted_privacy is not None:
        raise fail("--privacy does not apply to a sync table (--sync-interval)", 2)
    if not is_url and not Path(source).is_file():
        raise fail(f"no such file: {source}", 2)
    from entrepot.client.carto import IMPORT_STATES, SYNC_STATES

    with _client(url, token) as client:
        if sync_interval is not None:
            sync_job = client.carto.import_url(source, sync_interval=sync_interval, table_name=table_name)
            with _state_display(f"sync table {sync_job.id}", SYNC_STATES) as on_state:
                sync = sync_job.wait(timeout=timeout, on_state=on_state)
            if as_json:
                print_json(sync.raw)
            else:
                print(sync.name)
            err.print(f"sync table {sync.id}: every {sync.interval} s from {sync.url}", highlight=False)
            return
        if is_url:
            job = client.carto.import_url(source, table_name=table_name, privacy=wanted_privacy)
        else:
            job = client.carto.import_file(source, table_name=table_name, privacy=wanted_privacy)
        with _state_display(f"import {job.id}", IMPORT_STATES) as on_state:
            done = job.wait(timeout=timeout, on_state=on_state)
    if as_json:
        print_json(done.raw)
    else:
        print(done.table_name)
        if done.tables_created > 1:
            err.print(f"{done.tables_created} tables created; the first is shown", highlight=False)


# -- datasets ------------------------------------------------------------------------------------
datasets = typer.Typer(
    help="CARTO datasets (the tables of the default schema): list, show, privacy, rm.", no_args_is_help=True
)


@datasets.command("list")
def datasets_list(url: Url = None, token: Token = None, as_json: AsJson = False, wide: Wide = False) -> None:
    """List the datasets the token may read, newest change first."""
    with _client(url, token) as client:
        found = client.carto.datasets.list()
    if as_json:
        print_json([d.raw for d in found])
        return
    rows = [
        {"id": d.id, "name": d.name, "privacy": d.privacy, "rows": d.row_count, "updated": d.updated_at}
        for d in found
    ]
    columns = [
        Col("name", "name"),
        Col("id", "id", "id"),
        Col("privacy", "privacy"),
        Col("rows", "rows", "number"),
        Col("updated", "updated", "time"),
    ]
    print_table(rows, columns, wide=wide)


@datasets.command("show")
def datasets_show(
    dataset: Annotated[str, typer.Argument(help="The dataset's name or id.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """A dataset's JSON."""
    with _client(url, token) as client:
        print_json(client.carto.datasets.get(dataset).raw)


@datasets.command("privacy")
def datasets_privacy(
    dataset: Annotated[str, typer.Argument(help="The dataset's name or id.")],
    privacy: Annotated[str, typer.Argument(help="private, public or link.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Make a dataset private, public or link (anonymous SQL reads public and link datasets)."""
    wanted = _privacy(privacy)
    with _client(url, token) as client:
        changed = client.carto.datasets.update(dataset, privacy=wanted)
    err.print(f"{changed.name}: {changed.privacy}", highlight=False)


@datasets.command("rm")
def datasets_rm(
    dataset: Annotated[str, typer.Argument(help="The dataset's name or id.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Delete a dataset: its table is dropped."""
    with _client(url, token) as client:
        client.carto.datasets.delete(dataset)
    err.print(f"deleted {dataset}", highlight=False)


# -- API keys ------------------------------------------------------------------------------------
api_keys = typer.Typer(
    help="CARTO API keys (needs the master token): list, create, rm.", no_args_is_help=True
)

_GRANT = re.compile(r"^(?P<table>[^:]+):(?P<perms>[a-z,]+)$")


def _table_grant(text: str) -> Any:
    from entrepot.client.carto import TableGrant

    match = _GRANT.match(text)
    if match is None:
        raise fail(f"--table takes [SCHEMA.]TABLE:PERMISSION[,PERMISSION], not {text!r}", 2)
    schema, _, name = match["table"].rpartition(".")
    return TableGrant(schema or "public", name, tuple(match["perms"].split(",")))


@api_keys.command("list")
def keys_list(
    type: Annotated[
        str | None, typer.Option("--type", help="master, default or regular (a comma list).")
    ] = None,
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
    wide: Wide = False,
) -> None:
    """List the project's API keys (tokens only where the server shows them)."""
    with _client(url, token) as client:
        found = client.carto.api_keys.list(type=type)
    if as_json:
        print_json([k.raw for k in found])
        return
    rows = [
        {
            "name": k.name,
            "type": k.type,
            "apis": list(k.apis),
            "tables": [f"{t.schema}.{t.name}:{','.join(t.permissions)}" for t in k.tables],
            "created": k.created_at,
        }
        for k in found
    ]
    columns = [
        Col("name", "name"),
        Col("type", "type"),
        Col("apis", "apis"),
        Col("tables", "tables", "long"),
        Col("created", "created"),
    ]
    print_table(rows, columns, wide=wide)


@api_keys.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    api: Annotated[
        list[str] | None, typer.Option("--api", help="An API the key may use (sql, maps).")
    ] = None,
    table: Annotated[
        list[str] | None,
        typer.Option(
            "--table", help="A table grant: [SCHEMA.]TABLE:select,insert,update,delete (repeat for more)."
        ),
    ] = None,
    schema: Annotated[
        list[str] | None, typer.Option("--schema", help="A schema the key may create tables in.")
    ] = None,
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Create a regular API key; prints its token."""
    from entrepot.client.carto import SchemaGrant

    tables = [_table_grant(t) for t in table or []]
    with _client(url, token) as client:
        key = client.carto.api_keys.create(
            name, apis=api or ["sql"], tables=tables, schemas=[SchemaGrant(s) for s in schema or []]
        )
    if as_json:
        print_json(key.raw)
    else:
        print(key.token)
    err.print(f"created API key {key.name}", highlight=False)


@api_keys.command("rm")
def keys_rm(
    name: Annotated[str, typer.Argument(help="The key's name.")],
    url: Url = None,
    token: Token = None,
) -> None:
    """Delete a regular API key; its token stops working at once."""
    with _client(url, token) as client:
        client.carto.api_keys.delete(name)
    err.print(f"deleted API key {name}", highlight=False)


# -- maps ----------------------------------------------------------------------------------------
maps = typer.Typer(help="CARTO maps: instantiate a map config, fetch its tiles.", no_args_is_help=True)
TILE_FORMATS = ("mvt", "png", "grid.json")


@maps.command("create")
def maps_create(
    config: Annotated[
        str | None, typer.Argument(help="A MapConfig JSON file ('-': stdin); or give --sql.")
    ] = None,
    sql: Annotated[str | None, typer.Option("--sql", help="One layer showing this query's rows.")] = None,
    cartocss: Annotated[str | None, typer.Option("--cartocss", help="The --sql layer's CartoCSS.")] = None,
    url: Url = None,
    token: Token = None,
    as_json: AsJson = False,
) -> None:
    """Instantiate a map as the token; prints the layergroup id, then its tile URL templates."""
    if (config is None) == (sql is None):
        raise fail("give a MapConfig file or --sql (one of them)", 2)
    if sql is not None:
        options: dict[str, Any] = {"sql": sql, **({"cartocss": cartocss} if cartocss else {})}
        document: Any = {"version": "1.0.1", "layers": [{"type": "cartodb", "options": options}]}
    else:
        assert config is not None
        raw = typer.get_text_stream("stdin").read() if config == "-" else _read_text(config)
        try:
            document = json.loads(raw)
        except ValueError as exc:
            raise fail(f"{config}: not JSON: {exc}", 2) from None
        if not isinstance(document, dict):
            raise fail(f"{config}: a MapConfig is a JSON object with layers", 2)
    with _client(url, token) as client:
        group = client.carto.maps.instantiate(document)
        base = client.url
    if as_json:
        print_json(group.raw)
        return
    typer.echo(group.id)
    for fmt in ("mvt", "png"):
        err.print(
            f"{fmt}: {base}{group.tile_path('{z}', '{x}', '{y}', format=fmt)}",
            highlight=False,
            soft_wrap=True,
        )


@maps.command("tile")
def maps_tile(
    layergroup: Annotated[str, typer.Argument(help="The layergroup id (maps create prints it).")],
    z: Annotated[int, typer.Argument(help="Zoom.")],
    x: Annotated[int, typer.Argument(help="Column.")],
    y: Annotated[int, typer.Argument(help="Row.")],
    fmt: Annotated[str, typer.Option("--format", help="mvt, png or grid.json.")] = "mvt",
    layers: Annotated[str, typer.Option("--layers", help="all, 0, or 0,1.")] = "all",
    scale: Annotated[int, typer.Option("--scale", help="2 for a @2x PNG.")] = 1,
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Write the tile here (default: stdout).")
    ] = None,
    url: Url = None,
    token: Token = None,
) -> None:
    """Fetch one tile; an empty vector tile writes nothing."""
    if fmt not in TILE_FORMATS:
        raise fail(f"--format must be one of {', '.join(TILE_FORMATS)}", 2)
    with _client(url, token) as client:
        body = client.carto.maps.tile(layergroup, z, x, y, layers=layers, format=fmt, scale=scale)
    if output is not None:
        output.write_bytes(body)
        err.print(f"{output}: {len(body)} bytes", highlight=False)
    else:
        typer.get_binary_stream("stdout").write(body)


def _read_text(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError as exc:
        raise fail(f"{path}: {exc.strerror or exc}", 2) from None
