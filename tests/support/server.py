"""Real servers for tests: uvicorn in a thread, or ``entrepot`` as a subprocess."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from entrepot.config import Settings
from entrepot.core import auth
from entrepot.core.services import Services
from entrepot.server import ThreadedServer, prepare


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    url: str
    token: str  # master token of the 'default' project
    project_id: int
    services: Services
    settings: Settings
    _server: ThreadedServer | None = field(default=None, repr=False)
    s3_url: str | None = None  # the dedicated S3 listener (start_server(..., s3_port=0))

    def token_for(self, **spec: Any) -> str:
        """Create a token in the default project (TokenSpec fields) and return its secret."""
        return auth.create_token(self.services.catalog, self.project_id, auth.TokenSpec(**spec)).token

    def headers(self, token: str | None = None) -> dict[str, str]:
        return {"X-StorageApi-Token": token or self.token}

    def stop(self) -> None:
        if self._server is not None:
            self._server.stop()
        self.services.close()


def start_server(data_dir: Path, **overrides: Any) -> RunningServer:
    """Start uvicorn in a thread on a free port with its own data dir and the default project.

    ``s3_port=0`` also opens the dedicated S3 listener on a free port (``RunningServer.s3_url``).
    """
    overrides.setdefault("workers", 2)
    overrides.setdefault("log_level", "warning")
    settings = Settings(data_dir=data_dir, port=free_port(), **overrides)
    prepared = prepare(settings)
    assert prepared.bootstrap is not None, "a test server starts on an empty data dir"
    server = ThreadedServer(settings, prepared.services).start()
    return RunningServer(
        url=settings.effective_public_url,
        token=prepared.bootstrap.master.token,
        project_id=prepared.bootstrap.project.id,
        services=prepared.services,
        settings=settings,
        _server=server,
        s3_url=server.s3_url,
    )


def cli_env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    env["ENTREPOT_DATA_DIR"] = str(data_dir)
    env["ENTREPOT_LOG_LEVEL"] = "warning"
    tests_dir = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (tests_dir, env.get("PYTHONPATH", "")) if p)
    env.update(extra)
    return env


def run_cli(
    *args: str, env: dict[str, str], check: bool = True, timeout: float = 60
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-m", "entrepot", *args], env=env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"entrepot {' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def wait_healthy(proc: subprocess.Popen, url: str, output: Callable[[], str], timeout: float = 30) -> None:
    """Wait until the server process ``proc`` answers ``/health``; fail with its output if it exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"process exited early:\n{output()}")
        try:
            if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    raise AssertionError(f"server at {url} did not come up:\n{output()}")


def printed_token(output: str) -> str:
    """The master token ``entrepot serve`` prints on its first start (the line after the notice)."""
    lines = [line.strip() for line in output.splitlines()]
    return lines[next(i for i, line in enumerate(lines) if "shown only this once" in line) + 1]


class Process:
    """An ``entrepot`` subprocess that a test may stop or kill -9."""

    def __init__(self, args: list[str], env: dict[str, str], log: Path):
        self.log_path = log
        self._log = open(log, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "entrepot", *args], env=env, stdout=self._log, stderr=subprocess.STDOUT
        )

    def wait_http(self, url: str, timeout: float = 30) -> None:
        wait_healthy(self.proc, url, self.output, timeout)

    def output(self) -> str:
        if not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self, timeout: float = 15) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._log.close()
        return self.proc.returncode
