"""Every knob of entrepot in one place.

Settings come, highest priority first, from: command-line flags (passed as overrides),
environment variables prefixed ``ENTREPOT_``, an optional TOML file (``--config`` or
``ENTREPOT_CONFIG``), and the defaults below. ``docs/configuration.md`` documents each
field; a test fails when one is missing there.
"""

from __future__ import annotations

import contextvars
import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from entrepot.syntax import parse_failpoints, parse_s3_url

_config_file: contextvars.ContextVar[Path | None] = contextvars.ContextVar(
    "entrepot_config_file", default=None
)

MiB = 1024 * 1024


class Settings(BaseSettings):
    """Effective configuration of one entrepot process."""

    model_config = SettingsConfigDict(env_prefix="ENTREPOT_", extra="forbid", validate_default=True)

    # --- where things live -------------------------------------------------------------
    data_dir: Path = Field(Path("./entrepot-data"), description="Directory for the catalog, lakes and blobs.")
    catalog_url: str | None = Field(
        None,
        description="SQLAlchemy URL of the catalog. Default: SQLite file catalog.sqlite in the data dir. "
        "Scale-out: postgresql+psycopg://user:pass@host/db.",
    )
    blob_url: str | None = Field(
        None,
        description="Blob store: file:///path (default: <data dir>/blobs) or s3://bucket/prefix for an "
        "S3-compatible service (AWS S3, MinIO, Ceph; see the blob_s3_* settings).",
    )
    blob_s3_endpoint_url: str | None = Field(
        None,
        description="S3 endpoint of an s3:// blob store, e.g. http://minio:9000. Default: AWS S3 in blob_s3_region.",
    )
    blob_s3_region: str = Field("us-east-1", description="Region of an s3:// blob store (signs requests).")
    blob_s3_access_key_id: str | None = Field(
        None,
        description="Access key id of an s3:// blob store. Default: boto3's credential chain "
        "(AWS_ACCESS_KEY_ID, ~/.aws, instance role).",
    )
    blob_s3_secret_access_key: SecretStr | None = Field(
        None, description="Secret access key for blob_s3_access_key_id."
    )
    blob_s3_addressing_style: Literal["path", "virtual", "auto"] = Field(
        "path",
        description="How the bucket is addressed: 'path' (endpoint/bucket/key; MinIO, Ceph) or 'virtual' "
        "(bucket.endpoint/key; AWS), 'auto' lets boto3 choose.",
    )
    lake_catalog_url: str | None = Field(
        None,
        description="DuckLake catalog for project tables. Default: one SQLite file per project under "
        "<data dir>/lakes. A postgresql:// URL puts every project's lake catalog in that database "
        "(one schema per project).",
    )
    lake_data_path: str | None = Field(
        None, description="Where DuckLake writes Parquet files. Default: <data dir>/lakes/<project>/data."
    )

    # --- HTTP -------------------------------------------------------------------------
    host: str = Field("127.0.0.1", description="Interface the server binds to.")
    port: int = Field(8000, ge=0, le=65535, description="TCP port the server listens on.")
    public_url: str | None = Field(
        None,
        description="Base URL clients reach the server at; used in every URL the server hands out. "
        "Default: derived from host, port and TLS.",
    )
    tls: Literal["off", "self-signed"] = Field(
        "off", description="'self-signed' generates (once) a certificate for localhost in the data dir."
    )
    tls_cert: Path | None = Field(
        None, description="PEM certificate file; enables HTTPS together with tls_key."
    )
    tls_key: Path | None = Field(None, description="PEM private key file for tls_cert.")
    max_request_body: int = Field(
        64 * MiB,
        ge=1024,
        description="Largest request body (bytes) an API call may buffer; larger ones get 413.",
    )
    max_request_line: int = Field(
        1 * MiB,
        ge=8192,
        description="Largest request head (request line plus headers) in bytes; Keboola clients put CSV in URLs.",
    )

    # --- jobs ---------------------------------------------------------------------------
    workers: int = Field(2, ge=0, le=64, description="Job worker threads inside 'serve' (0 = none).")
    job_lease_seconds: float = Field(
        30.0, gt=0, description="A running job whose worker stops renewing its lease this long is recovered."
    )
    job_heartbeat_seconds: float = Field(
        5.0, gt=0, description="How often a worker renews the lease of its job."
    )
    job_max_attempts: int = Field(3, ge=1, description="Attempts before a job whose worker died is failed.")
    job_poll_interval: float = Field(
        0.05,
        gt=0,
        description="How often an idle worker looks for another process's commit (seconds): on SQLite a stat "
        "of the catalog's files, no query. Workers in the same process, and on PostgreSQL all workers, are "
        "woken at once on submit.",
    )
    job_idle_claim_interval: float = Field(
        1.0,
        gt=0,
        description="Longest an idle worker waits before it asks the catalog for a job anyway (seconds): the "
        "latency of a retry that comes due or a job whose submitter's wake-up was missed.",
    )

    plugins: list[str] = Field(
        default_factory=list,
        description="Python modules imported at start; a module's register_jobs(registry) adds job handlers.",
    )

    # --- engine -------------------------------------------------------------------------
    engine_threads: int = Field(2, ge=1, description="DuckDB threads per project lake.")
    engine_memory_limit: str = Field(
        "512MB",
        description="DuckDB memory limit per project lake; larger loads spill to <data dir>/tmp/engine.",
    )
    sql_time_limit: float = Field(
        30.0, gt=0, description="Statement time limit (seconds) for SQL run for users."
    )
    sql_batch_time_limit: float = Field(
        3600.0, gt=0, description="Time limit (seconds) of each query of a SQL API batch job."
    )
    sql_threads: int = Field(2, ge=1, description="DuckDB threads of each project's SQL sandbox.")
    sql_memory_limit: str = Field(
        "1GB", description="DuckDB memory limit of each project's SQL sandbox (queries spill beyond it)."
    )
    sql_max_rows: int = Field(
        1_000_000,
        ge=1,
        description="Most rows a synchronous json/geojson SQL API answer may hold; larger results need "
        "format=csv/parquet, COPY TO or a batch job.",
    )
    sql_max_copy_bytes: int = Field(
        2 * 1024 * MiB, ge=1, description="Largest COPY FROM body (bytes after decompression)."
    )
    sql_max_value_bytes: int = Field(
        64 * 1024,
        ge=1024,
        description="Largest value repeat(), lpad() and rpad() may build in user SQL. DuckDB keeps string "
        "vectors (2,048 values) outside sql_memory_limit, so this bounds that margin: sql_threads x 2,048 "
        "x this (256 MiB with the defaults).",
    )
    sql_max_statement_tokens: int = Field(
        200_000, ge=100, description="Most tokens (words, literals, symbols) in one user SQL statement."
    )
    sql_max_query_blocks: int = Field(
        500,
        ge=10,
        description="Most query blocks (SELECT, UNION, INTERSECT, EXCEPT) in one user SQL statement: "
        "DuckDB's planning time and memory grow faster than linearly with them, outside sql_memory_limit.",
    )
    sql_max_expression_depth: int = Field(
        250,
        ge=50,
        description="Deepest expression in user SQL (a chain of a + b + … or a || b || … is as deep as it is "
        "long): DuckDB's binding time grows with the cube of it (880 levels take 12 s).",
    )
    sql_max_concurrent_queries: int = Field(
        4,
        ge=1,
        description="SQL API statements one project runs at once (queries, batch queries, COPY TO and COPY "
        "FROM loads); more wait for a slot up to the statement time limit, then fail with CARTO's 429 "
        "'over platform's limits'.",
    )

    # --- tables and files -----------------------------------------------------------------
    job_response_wait: float = Field(
        1.5,
        ge=0,
        description="Seconds an asynchronous Keboola endpoint waits for its job before answering 202, so small "
        "jobs are already done when the client first polls.",
    )
    preview_page_limit: int = Field(
        10000, ge=1000, description="Largest 'limit' of a data preview in row-objects (offset) mode."
    )
    signed_url_ttl: int = Field(
        3600, ge=60, description="Lifetime (seconds) of signed, token-free download URLs."
    )
    file_max_age_days: int = Field(
        15, ge=1, description="Days a non-permanent file is kept (Keboola's maxAgeDays)."
    )
    url_import_allowed_hosts: list[str] = Field(
        default_factory=list,
        description="Hosts or CIDR ranges that dataUrl imports may reach although they are private, loopback or "
        'link-local (e.g. ["127.0.0.1"]). Everything else private is refused.',
    )
    url_import_max_bytes: int = Field(
        10 * 1024 * MiB, ge=1, description="Largest file (bytes) a dataUrl import downloads."
    )
    url_import_timeout: float = Field(300.0, gt=0, description="Time limit (seconds) of a dataUrl download.")
    import_max_inflated_bytes: int = Field(
        32 * 1024 * MiB,
        ge=1,
        description="Largest size (bytes) a gzip-compressed table import source may inflate to; it is "
        "inflated step by step into <data dir>/tmp/imports and refused as soon as it passes this.",
    )
    carto_import_max_columns: int = Field(
        1600,
        ge=1,
        description="Most columns a file imported through CARTO's Import API may have (PostgreSQL's limit); "
        "a wider file fails with CARTO's error 2004.",
    )
    carto_import_max_layers: int = Field(
        50,
        ge=1,
        description="Most layers (tables) one CARTO import may create (CARTO's limit); more fail with error 1019.",
    )
    carto_sync_min_interval: int = Field(
        900,
        ge=1,
        description="Shortest interval (seconds) of a CARTO sync table, and the least time between two runs a "
        "sync_now may ask for (CARTO's 900 s); shorter intervals are refused with 400.",
    )
    carto_sync_max_retries: int = Field(
        5,
        ge=0,
        description="Consecutive failed runs after which a CARTO sync table stops being scheduled (a sync_now "
        "or an update starts it again); failed runs are retried at the sync's interval until then.",
    )
    maps_tile_cache_bytes: int = Field(
        64 * 1024 * 1024,
        ge=0,
        description="Bytes of rendered map tiles (MVT, PNG, UTFGrid) a server process keeps in memory, least "
        "recently used first out (0: no cache). A tile is cached under its layergroup, its tables' last change "
        "and who it is rendered for, so a write never serves a stale tile.",
    )
    maps_tile_cache_disk_bytes: int = Field(
        512 * 1024 * 1024,
        ge=0,
        description="Bytes of rendered map tiles kept on disk under <data dir>/tile-cache, shared by the "
        "processes of one machine, least recently used first out (0: none); checked after the memory cache.",
    )
    maps_layergroup_ttl: int = Field(
        30 * 24 * 3600,
        ge=3600,
        description="Seconds a map layergroup is kept after it was last instantiated or served a tile; the "
        "maintenance sweep deletes older ones (their tiles then answer 404: instantiate the map again).",
    )
    maps_max_features: int = Field(
        1_000_000,
        ge=1,
        description="Most features one raster tile, grid or static image may draw; a layer with more in view "
        "is refused with 400 (ask for a higher zoom or filter the layer's SQL).",
    )

    # --- exports ----------------------------------------------------------------------------
    export_retention_days: float = Field(
        7.0,
        gt=0,
        description="Days a completed export's file is kept; then the maintenance sweep removes it (the job "
        "stays, marked file_expired).",
    )

    # --- identity -------------------------------------------------------------------------
    default_project: str = Field(
        "default", description="Project created (with a master token printed once) on first start."
    )
    token_touch_interval: float = Field(
        60.0,
        ge=0,
        description="Seconds between updates of a token's 'last used' time (limits catalog writes).",
    )

    # --- object spaces ---------------------------------------------------------------------
    presign_max_ttl: int = Field(
        7 * 24 * 3600,
        ge=1,
        description="Longest lifetime, in seconds, of a presigned object URL (default 7 days, as S3).",
    )
    object_metadata_max_bytes: int = Field(
        2048,
        ge=0,
        description="Largest total size of an object's user metadata (names and values, UTF-8 bytes).",
    )
    multipart_max_age_hours: float = Field(
        168.0,
        gt=0,
        description="Incomplete multipart uploads older than this are aborted by the maintenance sweep.",
    )
    expired_space_grace_days: float = Field(
        7.0,
        ge=0,
        description="Days an expired space stays readable (read-only) before the sweep removes it.",
    )
    maintenance_interval: float = Field(
        300.0,
        gt=0,
        description="Seconds between maintenance sweeps (expired spaces, stale multipart uploads, "
        "expired export files).",
    )

    # --- S3 credentials --------------------------------------------------------------------
    s3_session_ttl: int = Field(
        12 * 3600,
        ge=60,
        le=7 * 24 * 3600,
        description="Lifetime (seconds) of the temporary S3 credentials handed out for Keboola files "
        "(Keboola: 12 h); never longer than their token or file lives.",
    )
    s3_max_keys_per_token: int = Field(
        10, ge=1, description="S3 access keys one token may hold (revoked and expired ones do not count)."
    )
    s3_credential_cache_ttl: float = Field(
        5.0,
        ge=0,
        le=300,
        description="Seconds a server process keeps an S3 access key it resolved (its secret and its token's "
        "permissions) in memory, so that requests signed with it skip the catalog (0: never). Revoking the key "
        "or its token, changing the token or disabling its project through this process takes effect at once; "
        "done through another process (entrepot tokens revoke, another server) it takes up to this long.",
    )

    # --- S3 face ---------------------------------------------------------------------------
    s3_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Port of a dedicated S3 listener (e.g. 9000), served by the same server: every request "
        "there is S3, so anonymous reads of public spaces and virtual-host style work. Off by default; signed "
        "S3 requests are also answered on the main port.",
    )
    s3_host: str | None = Field(None, description="Interface of the S3 listener. Default: host.")
    s3_region: str = Field(
        "us-east-1",
        description="Region the S3 face reports (GetBucketLocation); requests signed for any region are accepted.",
    )
    s3_vhost_domains: list[str] = Field(
        default_factory=lambda: ["s3.localhost"],
        description="Host names under which <bucket>.<domain> addresses a bucket (S3 virtual-host style).",
    )
    s3_threads: int = Field(
        8,
        ge=1,
        le=256,
        description="Worker threads the S3 face runs its short blocking work in at once: resolving a credential, "
        "reading an object's entry and (up to 64 KiB) its bytes for GET and HEAD; more requests wait for one. "
        "Anything that receives a request body uses the server's common threads. Raise it when that work waits "
        "on the network (a PostgreSQL catalog, an s3:// blob store).",
    )
    s3_max_clock_skew: int = Field(
        900,
        ge=1,
        description="Seconds a signed S3 request's time may differ from the server's clock (S3: 15 minutes).",
    )
    s3_max_put_bytes: int = Field(
        5 * 1024 * MiB,
        ge=1,
        description="Largest S3 PutObject body (bytes; S3: 5 GiB); larger objects go up in multipart uploads.",
    )
    s3_max_part_bytes: int = Field(
        5 * 1024 * MiB, ge=1, description="Largest part of an S3 multipart upload (bytes; S3: 5 GiB)."
    )
    s3_min_part_bytes: int = Field(
        5 * MiB,
        ge=0,
        description="Smallest part of an S3 multipart upload, all but the last (bytes; S3: 5 MiB), checked at "
        "completion (EntityTooSmall).",
    )

    # --- Keboola files over S3 -------------------------------------------------------------
    s3_files_bucket: str = Field(
        "entrepot-files",
        pattern=r"^[a-z0-9][a-z0-9-]{1,61}[a-z0-9]$",
        description="Bucket name under which the S3 face serves Keboola files to their temporary credentials "
        "(files/prepare, file detail with federationToken); only those credentials reach it.",
    )

    # --- operations -----------------------------------------------------------------------
    log_level: Literal["debug", "info", "warning", "error"] = Field("info", description="Log level.")
    log_format: Literal["json", "text"] = Field(
        "text", description="Log line format: text or json (one object a line)."
    )
    backend_name: str = Field(
        "duckdb",
        description="Backend name reported to Keboola clients (owner.defaultBackend, bucket backend).",
    )
    secret_key: SecretStr | None = Field(
        None,
        description="Installation secret used to sign URLs. Default: generated once into <data dir>/secret.key.",
    )
    previous_secret_keys: list[SecretStr] = Field(
        default_factory=list,
        description="Former installation secrets still accepted when checking signed URLs (key rotation).",
    )
    failpoints: str = Field(
        "",
        description="Testing and crash drills: name=pause(seconds),… makes the process pause at those "
        "named places (see entrepot.core.failpoints). Leave empty in production.",
    )

    @field_validator("failpoints")
    @classmethod
    def _check_failpoints(cls, value: str) -> str:
        parse_failpoints(value)
        return value

    @field_validator("blob_url")
    @classmethod
    def _supported_blob_url(cls, v: str | None) -> str | None:
        if v is None:
            return v
        if v.startswith("s3://"):
            parse_s3_url(v)
        elif not v.startswith("file://"):
            raise ValueError("a blob store URL is file:///path or s3://bucket/prefix")
        return v

    @field_validator("data_dir")
    @classmethod
    def _absolute_data_dir(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        toml = _config_file.get()
        if toml is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml))
        return tuple(sources)

    # --- derived values ---------------------------------------------------------------
    @property
    def tls_enabled(self) -> bool:
        return self.tls == "self-signed" or (self.tls_cert is not None and self.tls_key is not None)

    @property
    def effective_catalog_url(self) -> str:
        return self.catalog_url or f"sqlite:///{self.data_dir / 'catalog.sqlite'}"

    @property
    def effective_blob_url(self) -> str:
        return self.blob_url or (self.data_dir / "blobs").as_uri()

    @property
    def effective_public_url(self) -> str:
        if self.public_url:
            return self.public_url.rstrip("/")
        scheme = "https" if self.tls_enabled else "http"
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"{scheme}://{host}:{self.port}"

    def masked(self) -> dict[str, Any]:
        """The effective settings as plain values, with secrets and URL passwords masked."""
        out: dict[str, Any] = {}
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                value = "********" if value.get_secret_value() else ""
            elif isinstance(value, list) and any(isinstance(v, SecretStr) for v in value):
                value = ["********" for _ in value]
            elif isinstance(value, Path):
                value = str(value)
            elif isinstance(value, str) and "://" in value:
                value = mask_url_password(value)
            out[name] = value
        out["effective_catalog_url"] = mask_url_password(self.effective_catalog_url)
        out["effective_blob_url"] = self.effective_blob_url
        out["effective_public_url"] = self.effective_public_url
        return out


def mask_url_password(url: str) -> str:
    """Replace the password of a URL (``scheme://user:pass@host``) with asterisks."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    user = netloc[0].split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:********@{netloc[1]}"))


def load_settings(config_file: Path | str | None = None, **overrides: Any) -> Settings:
    """Build settings from overrides (None values ignored), environment, and a TOML file.

    The TOML file is ``config_file`` or, when not given, the path in ``ENTREPOT_CONFIG``.
    """
    path = config_file or os.environ.get("ENTREPOT_CONFIG") or None
    if path is not None:
        path = Path(path).expanduser()
        if not path.is_file():
            raise FileNotFoundError(f"config file {path} does not exist")
    token = _config_file.set(Path(path) if path else None)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    finally:
        _config_file.reset(token)
