"""A throw-away PostgreSQL cluster for tests, started with the machine's ``initdb``/``pg_ctl``.

The cluster listens on 127.0.0.1 on a free port, trusts every local connection, keeps its
socket in its own directory and is deleted on :meth:`PostgresCluster.stop`.

PostgreSQL refuses to run as root. When the tests run as root (CI containers), the cluster
runs as the ``postgres`` system user (created by Debian's ``postgresql`` package) or, failing
that, ``nobody``; its directory then lives in a fresh ``/tmp/entrepot-pg-*`` directory owned
by that user, because pytest's temporary directories are private to root.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

SUPERUSER = "postgres"
_BINARIES = ("initdb", "pg_ctl")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def find_bindir() -> Path | None:
    """The directory holding initdb and pg_ctl: PATH first, then /usr/lib/postgresql/<newest>/bin."""
    found = [shutil.which(name) for name in _BINARIES]
    if all(found):
        return Path(os.path.realpath(found[0])).parent  # type: ignore[arg-type]
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(Path(p).parent.name) if Path(p).parent.name.isdigit() else 0,
        reverse=True,
    )
    for candidate in candidates:
        if all((Path(candidate) / name).is_file() for name in _BINARIES):
            return Path(candidate)
    return None


class PostgresCluster:
    """One PostgreSQL server for the duration of a test session or module."""

    def __init__(self, base_dir: Path | str | None = None) -> None:
        self.base_dir = Path(base_dir) if base_dir is not None else Path(tempfile.mkdtemp(prefix="entrepot-pgbase-"))
        self.bindir = find_bindir()
        self.port: int | None = None
        self.host = "127.0.0.1"
        self.user = SUPERUSER
        self._root: Path | None = None
        self._own_root = False
        self._run_as: pwd.struct_passwd | None = None

    # --- lifecycle -------------------------------------------------------------------
    def available(self) -> tuple[bool, str]:
        """Whether a cluster can be started here; the reason when not."""
        if self.bindir is None:
            return False, "initdb/pg_ctl are neither on PATH nor under /usr/lib/postgresql/*/bin"
        if os.geteuid() == 0 and self._service_user() is None:
            return False, "running as root and neither a 'postgres' nor a 'nobody' user exists to run the server"
        return True, ""

    @property
    def running(self) -> bool:
        return self.port is not None

    def start(self) -> None:
        ok, reason = self.available()
        if not ok:
            raise RuntimeError(f"cannot start PostgreSQL: {reason}")
        if self.running:
            return
        if os.geteuid() == 0:
            self._run_as = self._service_user()
            self._root = Path(tempfile.mkdtemp(prefix="entrepot-pg-"))
            self._own_root = True
            assert self._run_as is not None
            os.chown(self._root, self._run_as.pw_uid, self._run_as.pw_gid)
        else:
            self.base_dir.mkdir(parents=True, exist_ok=True)
            self._root = Path(tempfile.mkdtemp(prefix="cluster-", dir=self.base_dir))
        data, sockets = self._root / "data", self._root / "sock"
        self._run(["mkdir", "-p", str(sockets)])
        self._run(
            [
                str(self.bindir / "initdb"),  # type: ignore[operator]
                "-D", str(data),
                "-U", SUPERUSER,
                "--auth=trust",
                "--encoding=UTF8",
                "--no-locale",
                "--no-sync",
            ]
        )  # fmt: skip
        last_error = ""
        for _ in range(5):  # a free port can be taken between probing and binding
            port = _free_port()
            options = f"-h {self.host} -p {port} -k {sockets} -F -c max_connections=200 -c fsync=off"
            result = self._run(
                [
                    str(self.bindir / "pg_ctl"),  # type: ignore[operator]
                    "-D", str(data),
                    "-l", str(self._root / "server.log"),
                    "-o", options,
                    "-w", "-t", "60",
                    "start",
                ],
                check=False,
            )  # fmt: skip
            if result.returncode == 0:
                self.port = port
                return
            last_error = result.stdout + result.stderr + self._log_tail()
        raise RuntimeError(f"PostgreSQL did not start: {last_error}")

    def stop(self) -> None:
        """Stop the server (fast shutdown) and delete its directory."""
        if self._root is None:
            return
        if self.running:
            self._run(
                [str(self.bindir / "pg_ctl"), "-D", str(self._root / "data"), "-m", "fast", "-w", "stop"],  # type: ignore[operator]
                check=False,
            )
            self.port = None
        shutil.rmtree(self._root, ignore_errors=True)
        self._root = None

    def __enter__(self) -> PostgresCluster:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- databases ----------------------------------------------------------------------
    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its SQLAlchemy URL (``postgresql+psycopg://``)."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.sqlalchemy_url(name)

    def drop_database(self, name: str) -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.dsn("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))

    def sqlalchemy_url(self, database: str) -> str:
        return f"postgresql+psycopg://{self.user}@{self.host}:{self._port()}/{database}"

    def url(self, database: str) -> str:
        """libpq URL (``postgresql://user@host:port/db``), e.g. for DuckLake's ``lake_catalog_url``."""
        return f"postgresql://{self.user}@{self.host}:{self._port()}/{database}"

    def dsn(self, database: str) -> str:
        """libpq key/value connection string."""
        return f"host={self.host} port={self._port()} user={self.user} dbname={database}"

    # --- internals ----------------------------------------------------------------------
    def _port(self) -> int:
        if self.port is None:
            raise RuntimeError("the PostgreSQL cluster is not running; call start() first")
        return self.port

    @staticmethod
    def _service_user() -> pwd.struct_passwd | None:
        for name in ("postgres", "nobody"):
            try:
                return pwd.getpwnam(name)
            except KeyError:
                continue
        return None

    def _run(self, args: list[str], *, check: bool = True) -> subprocess.CompletedProcess[str]:
        kwargs: dict[str, Any] = {"capture_output": True, "text": True, "cwd": "/"}
        if self._run_as is not None:
            kwargs.update(user=self._run_as.pw_uid, group=self._run_as.pw_gid, extra_groups=[])
            kwargs["env"] = {**os.environ, "HOME": str(self._root), "USER": self._run_as.pw_name}
        result = subprocess.run(args, **kwargs)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"{Path(args[0]).name} failed (exit {result.returncode}): {result.stdout}{result.stderr}"
            )
        return result

    def _log_tail(self) -> str:
        try:
            return (self._root / "server.log").read_text(errors="replace")[-2000:]  # type: ignore[operator]
        except OSError:
            return ""

    def wait_ready(self, timeout: float = 10.0) -> None:
        """Block until the server accepts connections (pg_ctl -w already waits; for restarts)."""
        import psycopg

        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.dsn("postgres"), connect_timeout=2):
                    return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
