"""Running the HTTP server: bootstrap, uvicorn configuration, and an in-thread server for tests."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import uvicorn

from entrepot.app import create_app
from entrepot.config import Settings
from entrepot.core.projects import NewProject, ensure_default_project
from entrepot.core.services import Services
from entrepot.tls import ensure_self_signed


@dataclass
class Prepared:
    services: Services
    bootstrap: NewProject | None


def prepare(settings: Settings) -> Prepared:
    """Open the services (applying migrations) and create the default project on first start."""
    services = Services.open(settings)
    return Prepared(services, ensure_default_project(services.catalog, settings.default_project))


def uvicorn_config(settings: Settings, services: Services, *, workers: int | None = None) -> uvicorn.Config:
    app = create_app(settings, services, workers=workers)
    ssl: dict[str, str] = {}
    if settings.tls == "self-signed":
        files = ensure_self_signed(settings.data_dir / "tls")
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
        self.server = uvicorn.Server(uvicorn_config(settings, services, workers=workers))
        self.server.install_signal_handlers = lambda: None  # type: ignore[attr-defined]
        self.thread = threading.Thread(target=self.server.run, name="entrepot-server", daemon=True)

    @property
    def url(self) -> str:
        return self.settings.effective_public_url

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
