"""serve, worker, migrate, config."""

from __future__ import annotations

import json
import shlex
import signal
import threading
from pathlib import Path
from typing import Annotated

import typer
import uvicorn

from entrepot.cli.options import CatalogUrl, ConfigFile, DataDir, err, out, settings_from
from entrepot.config import Settings, mask_url_password
from entrepot.core.services import Services
from entrepot.logs import configure_logging


def serve(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    host: Annotated[str | None, typer.Option(help="Interface to bind (default: 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (default: 8000).")] = None,
    public_url: Annotated[
        str | None, typer.Option(help="Base URL clients use; used in handed-out URLs.")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="Job worker threads in this process (default: 2).")
    ] = None,
    no_workers: Annotated[bool, typer.Option("--no-workers", help="Run no job workers (scale-out).")] = False,
    tls: Annotated[
        str | None, typer.Option(help="'self-signed' to serve HTTPS with a generated certificate.")
    ] = None,
    tls_cert: Annotated[Path | None, typer.Option(help="PEM certificate for HTTPS.")] = None,
    tls_key: Annotated[Path | None, typer.Option(help="PEM private key for HTTPS.")] = None,
    catalog_url: CatalogUrl = None,
    blob_url: Annotated[
        str | None, typer.Option(help="Blob store URL (default: file://<data dir>/blobs).")
    ] = None,
    max_request_body: Annotated[
        int | None, typer.Option(help="Largest buffered request body in bytes.")
    ] = None,
    s3_port: Annotated[
        int | None,
        typer.Option(
            help="Also listen for S3 on this port (e.g. 9000): anonymous and virtual-host requests."
        ),
    ] = None,
    s3_host: Annotated[
        str | None, typer.Option(help="Interface of the S3 listener (default: --host).")
    ] = None,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
    log_format: Annotated[str | None, typer.Option(help="text or json.")] = None,
) -> None:
    """Run the HTTP server (and job workers). Creates the 'default' project on first start."""
    from entrepot.server import listeners, prepare, s3_url, uvicorn_config

    settings = settings_from(
        config,
        data_dir=data_dir,
        host=host,
        port=port,
        public_url=public_url,
        workers=0 if no_workers else workers,
        tls=tls,
        tls_cert=tls_cert,
        tls_key=tls_key,
        catalog_url=catalog_url,
        blob_url=blob_url,
        max_request_body=max_request_body,
        s3_port=s3_port,
        s3_host=s3_host,
        log_level=log_level,
        log_format=log_format,
    )
    if (settings.tls_cert is None) != (settings.tls_key is None):
        err.print("[red]error:[/red] --tls-cert and --tls-key go together")
        raise typer.Exit(2)
    configure_logging(settings.log_level, settings.log_format)
    prepared = prepare(settings)
    try:
        bound = listeners(settings)
    except OSError as exc:
        prepared.services.close()
        err.print(f"[red]error:[/red] {exc.strerror or exc}")
        raise typer.Exit(1) from None
    cfg = uvicorn_config(settings, prepared.services, s3_ports=bound.s3_ports)
    url = settings.effective_public_url
    out.print(f"entrepot serving at [bold]{url}[/bold] (data: {settings.data_dir})")
    if bound.s3_port is not None:
        out.print(f"S3 listener at [bold]{s3_url(settings, bound.s3_port)}[/bold]")
    if settings.tls == "self-signed":
        out.print(f"TLS: trust {settings.data_dir / 'tls' / 'ca.pem'} (e.g. REQUESTS_CA_BUNDLE)")
    if prepared.bootstrap is not None:
        boot = prepared.bootstrap
        out.print(
            f"Created project [bold]{boot.project.name}[/bold]. Its master token, shown only this once:"
        )
        print(f"  {boot.master.token}", flush=True)
        print(
            f"Try: curl -H 'X-StorageApi-Token: {boot.master.token}' {url}/v2/storage/tokens/verify",
            flush=True,
        )
    else:  # a restart: the first token was shown only once; say how to make another
        from entrepot.core.projects import list_projects

        names = [p.name for p in list_projects(prepared.services.catalog)]
        project = settings.default_project if settings.default_project in names or not names else names[0]
        print(f"To create a token: {token_hint(settings, config, project)}", flush=True)
    try:
        uvicorn.Server(cfg).run(sockets=bound.sockets or None)
    finally:
        bound.close()
        prepared.services.close()


def token_hint(settings: Settings, config: Path | None, project: str) -> str:
    """The ``entrepot tokens create`` command that reaches this server's catalog from any shell.

    A catalog URL's password is masked: the hint names the catalog, the operator knows the secret.
    """
    words = ["entrepot", "tokens", "create", "--project", project, "--master"]
    if config is not None:
        words += ["--config", str(config.expanduser().resolve())]
    default_dir = Settings.model_fields["data_dir"].default.expanduser().resolve()
    if settings.data_dir != default_dir:
        words += ["--data-dir", str(settings.data_dir)]
    if settings.catalog_url and config is None:  # a config file names its own catalog
        words += ["--catalog-url", mask_url_password(settings.catalog_url)]
    return shlex.join(words)


def worker(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    catalog_url: CatalogUrl = None,
    concurrency: Annotated[int, typer.Option(help="Jobs this process runs at once.")] = 2,
    log_level: Annotated[str | None, typer.Option(help="debug, info, warning or error.")] = None,
    log_format: Annotated[str | None, typer.Option(help="text or json.")] = None,
) -> None:
    """Run job workers only, sharing the catalog with 'serve' (stop with Ctrl-C or SIGTERM)."""
    settings = settings_from(
        config, data_dir=data_dir, catalog_url=catalog_url, log_level=log_level, log_format=log_format
    )
    configure_logging(settings.log_level, settings.log_format)
    services = Services.open(settings)
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    pool = services.start_workers(concurrency, name="worker")
    catalog = mask_url_password(settings.effective_catalog_url)
    err.print(f"entrepot worker running {concurrency} job slot(s) on {catalog}")
    try:
        stop.wait()
    finally:
        pool.stop()
        services.workers = None
        services.close()


def migrate(data_dir: DataDir = None, config: ConfigFile = None, catalog_url: CatalogUrl = None) -> None:
    """Apply pending catalog migrations and print the schema revision."""
    settings = settings_from(config, data_dir=data_dir, catalog_url=catalog_url)
    services = Services.open(settings, migrate=False)
    try:
        out.print(f"catalog at revision {services.catalog.migrate()}")
    finally:
        services.close()


def show_config(
    data_dir: DataDir = None,
    config: ConfigFile = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Print the effective settings, secrets masked."""
    settings = settings_from(config, data_dir=data_dir)
    values = settings.masked()
    if as_json:
        print(json.dumps(values, indent=2, default=str))
        return
    for name, value in values.items():
        out.print(f"{name} = {value!r}", highlight=False)
