"""A throw-away PostgreSQL cluster for tests, started with the machine's ``initdb``/``pg_ctl``.

The cluster listens on 127.0.0.1 on a free port with trust authentication and no unix
socket. PostgreSQL refuses to run as root; when the tests run as root (containers, CI)
the cluster is owned by and run as the ``postgres`` system user, in a directory of its own
outside pytest's root-only temporary tree.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from pathlib import Path

from support.server import free_port

SUPERUSER = "entrepot_test"


def _find_bin_dir() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), reverse=True)
    candidates += sorted(glob.glob("/usr/local/pgsql/bin/pg_ctl"))
    return Path(candidates[0]).parent if candidates else None


class PostgresCluster:
    def __init__(self, base: Path):
        self.bin_dir = _find_bin_dir()
        self.port = free_port()
        self._run_as: str | None = None
        self._own_dir = False
        if os.geteuid() == 0:
            self._run_as = "postgres"
            base = Path(tempfile.mkdtemp(prefix="entrepot-pg-"))
            self._own_dir = True
        self.base = base
        self.data = base / "data"
        self.log = base / "postgres.log"

    def available(self) -> tuple[bool, str]:
        if self.bin_dir is None:
            return False, "no pg_ctl on PATH or under /usr/lib/postgresql/*/bin (apt-get install postgresql)"
        if not (self.bin_dir / "initdb").exists():
            return False, f"{self.bin_dir} has pg_ctl but no initdb"
        if self._run_as is not None:
            try:
                pwd.getpwnam(self._run_as)
            except KeyError:
                return False, "running as root and there is no 'postgres' user to own the cluster"
        return True, ""

    def _cmd(self, *args: str) -> list[str]:
        if self._run_as is None:
            return list(args)
        return ["runuser", "-u", self._run_as, "--", *args]

    def _run(self, *args: str) -> None:
        proc = subprocess.run(self._cmd(*args), capture_output=True, text=True, timeout=120)
        if proc.returncode != 0:
            log = self.log.read_text() if self.log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}\n{log}"
            )

    def start(self) -> None:
        assert self.bin_dir is not None
        if self._run_as is not None:
            user = pwd.getpwnam(self._run_as)
            os.chown(self.base, user.pw_uid, user.pw_gid)
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", SUPERUSER, "--auth=trust",
            "--encoding=UTF8", "--no-sync",
        )  # fmt: skip
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c unix_socket_directories='' "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"),
            "-D",
            str(self.data),
            "-l",
            str(self.log),
            "-o",
            options,
            "-w",
            "start",
        )

    @property
    def admin_dsn(self) -> str:
        return f"host=127.0.0.1 port={self.port} user={SUPERUSER} dbname=postgres"

    def url(self, database: str) -> str:
        return f"postgresql+psycopg://{SUPERUSER}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        import psycopg

        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def password_login(self, role: str, password: str, database: str) -> str:
        """A role that must log in with ``password`` (SCRAM, not trust) and owns ``database``; its URL."""
        import psycopg

        hba = self.data / "pg_hba.conf"
        rule = f"host all {role} 127.0.0.1/32 scram-sha-256\n"
        hba.write_text(rule + hba.read_text())  # first matching line wins: before the trust lines
        with psycopg.connect(self.admin_dsn, autocommit=True) as conn:
            conn.execute(f"CREATE ROLE \"{role}\" LOGIN PASSWORD '{password}'")
            conn.execute(f'CREATE DATABASE "{database}" OWNER "{role}"')
            conn.execute("SELECT pg_reload_conf()")
        # the postmaster applies the new rule on its own time: wait until a wrong password is refused
        wrong = f"host=127.0.0.1 port={self.port} user={role} dbname={database} password=wrong-{password}"
        for _ in range(1000):
            try:
                psycopg.connect(wrong).close()
            except psycopg.OperationalError as exc:
                if "password authentication failed" in str(exc):
                    break
                raise
        else:
            raise AssertionError("pg_hba.conf's password rule never took effect")
        return f"postgresql://{role}:{password}@127.0.0.1:{self.port}/{database}"

    def stop(self) -> None:
        if self.bin_dir is not None and self.data.exists():
            subprocess.run(
                self._cmd(
                    str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "immediate", "-w", "stop"
                ),
                capture_output=True,
                timeout=60,
            )
        if self._own_dir:
            shutil.rmtree(self.base, ignore_errors=True)
