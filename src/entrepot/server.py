"""Running the HTTP server: bootstrap, uvicorn configuration, and an in-thread server for tests.

With ``s3_port`` set, one uvicorn server listens on two sockets: the main port and the dedicated
S3 listener (every request there is S3). Both are bound before the app is built, so port 0 works
(tests) and the app knows which port is the S3 one; they share the lifespan, the services, the
worker pool and the TLS configuration.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field

import uvicorn

from entrepot.app import create_app
from entrepot.config import Settings
from entrepot.core.projects import NewProject, ensure_default_project
from entrepot.core.services import Services
from entrepot.tls import LOCAL_HOSTS, ensure_self_signed


@dataclass
class Prepared:
    services: Services
    bootstrap: NewProject | None


def prepare(settings: Settings) -> Prepared:
    """Open the services (applying migrations) and create the default project on first start."""
    services = Services.open(settings)
    return Prepared(services, ensure_default_project(services.catalog, settings.default_project))


def bind(host: str, port: int) -> socket.socket:
    """A TCP socket bound to ``host:port`` (IPv6 when the host has a ':'), as uvicorn binds its own."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family=family, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise OSError(exc.errno, f"cannot listen on {host}:{port}: {exc.strerror}") from exc
    sock.set_inheritable(True)
    return sock


@dataclass
class Listeners:
    """The sockets to serve: none (uvicorn binds host:port itself), or the main one and the S3 one."""

    sockets: list[socket.socket] = field(default_factory=list)
    s3_port: int | None = None

    @property
    def s3_ports(self) -> frozenset[int]:
        return frozenset() if self.s3_port is None else frozenset({self.s3_port})

    def close(self) -> None:
        for sock in self.sockets:
            sock.close()


def listeners(settings: Settings) -> Listeners:
    """Bind the main and the S3 sockets when an S3 listener is configured."""
    if settings.s3_port is None:
        return Listeners()
    main = bind(settings.host, settings.port)
    try:
        s3 = bind(settings.s3_host or settings.host, settings.s3_port)
    except OSError:
        main.close()
        raise
    return Listeners([main, s3], s3.getsockname()[1])


def s3_url(settings: Settings, port: int) -> str:
    """The URL of the S3 listener on ``port``."""
    scheme = "https" if settings.tls_enabled else "http"
    host = settings.s3_host or settings.host
    host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"{scheme}://{f'[{host}]' if ':' in host else host}:{port}"


def uvicorn_config(
    settings: Settings,
    services: Services,
    *,
    workers: int | None = None,
    s3_ports: frozenset[int] = frozenset(),
) -> uvicorn.Config:
    app = create_app(settings, services, workers=workers, s3_ports=s3_ports)
    ssl: dict[str, str] = {}
    if settings.tls == "self-signed":
        wildcards = tuple(f"*.{domain}" for domain in settings.s3_vhost_domains)  # <bucket>.s3.localhost
        files = ensure_self_signed(settings.data_dir / "tls", LOCAL_HOSTS + wildcards)
        ssl = {"ssl_certfile": str(files.cert), "ssl_keyfile": str(files.key)}
    elif settings.tls_cert and settings.tls_key:
        ssl = {"ssl_certfile": str(settings.tls_cert), "ssl_keyfile": str(settings.tls_key)}
    return uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        server_header=False,
        h11_max_incomplete_event_size=settings.max_request_line,
        timeout_graceful_shutdown=10,
        **ssl,  # type: ignore[arg-type]
    )


class ThreadedServer:
    """uvicorn in a background thread (tests and benchmarks); ``stop()`` shuts it down cleanly."""

    def __init__(self, settings: Settings, services: Services, *, workers: int | None = None):
        self.settings = settings
        self.services = services
        self.listeners = listeners(settings)
        config = uvicorn_config(settings, services, workers=workers, s3_ports=self.listeners.s3_ports)
        self.server = uvicorn.Server(config)
        self.server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
        sockets = self.listeners.sockets or None
        self.thread = threading.Thread(
            target=lambda: self.server.run(sockets=sockets), name="entrepot-server", daemon=True
        )

    @property
    def url(self) -> str:
        return self.settings.effective_public_url

    @property
    def s3_url(self) -> str | None:
        """The dedicated S3 listener's URL (None without ``s3_port``)."""
        port = self.listeners.s3_port
        return None if port is None else s3_url(self.settings, port)

    def start(self, timeout: float = 20.0) -> ThreadedServer:
        self.thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the entrepot server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)
        self.listeners.close()
