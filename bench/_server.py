"""An ``entrepot serve`` subprocess for benchmarks: its URL, master token and memory."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import httpx


class Server:
    def __init__(self, tmp: Path, token: str | None = None, **env_overrides: str):
        port = _free_port()
        env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
        env.update(ENTREPOT_DATA_DIR=str(tmp / "data"), ENTREPOT_LOG_LEVEL="warning", **env_overrides)
        self.log = open(tmp / f"serve-{port}.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "entrepot", "serve", "--port", str(port)], env=env, stdout=self.log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        self.url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{self.url}/health").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
            assert time.monotonic() < deadline, "server did not start"
        if token is not None:  # a restart: the first start printed the token
            self.token = token
            return
        self.log.seek(0)
        lines = self.log.read().splitlines()
        self.token = next(
            lines[i + 1].strip() for i, line in enumerate(lines) if "shown only this once" in line
        )

    def rss_mb(self) -> float:
        """The server process's resident memory now (MB)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def peak_rss_mb(self) -> float:
        """The server process's peak resident memory so far (VmHWM, MB)."""
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
        return 0.0

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
