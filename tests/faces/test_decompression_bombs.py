"""Gzip bombs against every face that inflates: a clear 4xx (or job error), nothing changed, flat memory.

A 3 MB gzip body can inflate to 3 GiB. COPY FROM with ``Content-Encoding: gzip`` (CARTO face)
and table imports from a gzipped file (Keboola face) must refuse it once the inflated data
passes the configured limit, leave the target table as it was, and keep the server's memory
flat: each inflate step produces at most 1 MiB (``core.inflate``).

The server runs as its own ``entrepot serve`` process (job workers inside), so its peak RSS is
measured honestly: the kernel's high-water mark (``VmHWM``) is reset through
``/proc/<pid>/clear_refs`` before each bomb and read after the answer. Before the fix a 261 KB
bomb drove the server to +5.4 GB.
"""

from __future__ import annotations

import contextlib
import gzip
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from entrepot.client import Client
from entrepot.client.errors import JobFailed, NotFound
from support.bombs import GiB, MiB, gzip_bomb
from support.server import Process, cli_env, free_port

pytestmark = pytest.mark.timeout(300)

LIMIT = 32 * MiB  # sql_max_copy_bytes and import_max_inflated_bytes of the server under test
MAX_GROWTH_MB = 100
ROWS = [{"n": 1, "s": "one"}, {"n": 2, "s": "two"}]


@dataclass
class Served:
    url: str
    token: str
    process: Process
    data_dir: Path

    @property
    def pid(self) -> int:
        return self.process.proc.pid

    def sql(self, q: str) -> dict[str, Any]:
        r = httpx.post(
            f"{self.url}/user/default/api/v2/sql", data={"q": q, "api_key": self.token}, timeout=60
        )
        assert r.status_code == 200, (q, r.status_code, r.text)
        return r.json()

    def copy_from(self, q: str, body: bytes, encoding: str | None = "gzip") -> httpx.Response:
        headers = {"Content-Encoding": encoding} if encoding else {}
        return httpx.post(
            f"{self.url}/user/default/api/v2/sql/copyfrom",
            params={"q": q, "api_key": self.token},
            content=body,
            headers=headers,
            timeout=240,
        )


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    tmp = tmp_path_factory.mktemp("bombs")
    env = cli_env(
        tmp / "data",
        ENTREPOT_SQL_MAX_COPY_BYTES=str(LIMIT),
        ENTREPOT_IMPORT_MAX_INFLATED_BYTES=str(LIMIT),
    )
    port = free_port()
    process = Process(["serve", "--port", str(port)], env, tmp / "serve.log")
    try:
        url = f"http://127.0.0.1:{port}"
        process.wait_http(url)
        lines = process.output().splitlines()
        token = next(lines[i + 1].strip() for i, line in enumerate(lines) if "shown only this once" in line)
        running = Served(url, token, process, tmp / "data")
        running.sql("create table target (n integer, s text)")
        running.sql("insert into target values (1, 'one'), (2, 'two')")
        running.sql("create table warm (n integer, s text)")
        # warm up the COPY path (sandbox, spill directory, write cursor) so only the bomb is measured
        r = running.copy_from("COPY warm (n, s) FROM STDIN", gzip.compress(b"1\tx\n" * 1000))
        assert r.status_code == 200, r.text
        yield running
    finally:
        process.stop()


def _status_kb(pid: int) -> dict[str, int]:
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            values[key] = int(rest.split()[0])
    return values


@contextlib.contextmanager
def peak_growth_mb(pid: int) -> Iterator[list[float]]:
    """Yields a list that receives the growth of the process's peak RSS over its RSS at entry (MB).

    Resets the peak first (``clear_refs``); where that is not allowed the peak since the start
    counts, which can only overstate the growth.
    """
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    before = _status_kb(pid)["VmRSS"]
    growth: list[float] = []
    yield growth
    growth.append((_status_kb(pid)["VmHWM"] - before) / 1024)


def _refused(response: httpx.Response, status: int, *fragments: str) -> str:
    """CARTO's error envelope ``{"error": [message]}`` with ``status``; returns the message."""
    assert response.status_code == status, (response.status_code, response.text[:500])
    body = response.json()
    assert isinstance(body.get("error"), list) and body["error"], body
    message = " ".join(body["error"])
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    return message


def _target(served: Served) -> list[dict[str, Any]]:
    return served.sql("select n, s from target order by n")["rows"]


# -- COPY FROM -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "pattern"),
    [("", b"1\tx\n"), (" WITH (FORMAT csv)", b"1,x\n")],
    ids=["text", "csv"],
)
def test_copy_from_gzip_bomb_is_413_and_memory_stays_flat(served: Served, options: str, pattern: bytes):
    bomb = gzip_bomb(3 * GiB, pattern)  # ~3 MB
    assert len(bomb) < 4 * MiB
    with peak_growth_mb(served.pid) as growth:
        r = served.copy_from(f"COPY target (n, s) FROM STDIN{options}", bomb)
    _refused(r, 413, str(LIMIT), "sql_max_copy_bytes")
    assert growth[0] < MAX_GROWTH_MB, f"server peak RSS grew {growth[0]:.0f} MB"
    assert _target(served) == ROWS


def test_copy_from_gzip_bomb_of_one_endless_line_is_400_at_once(served: Served):
    """The finding's 2 MB body of ``aaa…`` for an integer column: refused after 8 MiB of one line."""
    bomb = gzip_bomb(2 * GiB, b"aaaaaaaa")
    with peak_growth_mb(served.pid) as growth:
        r = served.copy_from("COPY target (n) FROM STDIN", bomb)
    _refused(r, 400, "line 1")
    assert growth[0] < MAX_GROWTH_MB, f"server peak RSS grew {growth[0]:.0f} MB"
    assert _target(served) == ROWS


@pytest.mark.parametrize(
    ("options", "pattern"),
    [("", b"aaa\tx\n"), (" WITH (FORMAT csv)", b"aaa,x\n")],
    ids=["text", "csv"],
)
def test_copy_from_gzip_of_invalid_rows_under_the_limit_is_400(served: Served, options: str, pattern: bytes):
    """Under the limit the body reaches the engine, which refuses the first row; memory stays flat."""
    bomb = gzip_bomb(LIMIT - MiB, pattern)
    with peak_growth_mb(served.pid) as growth:
        r = served.copy_from(f"COPY target (n, s) FROM STDIN{options}", bomb)
    _refused(r, 400, "aaa")
    assert growth[0] < MAX_GROWTH_MB, f"server peak RSS grew {growth[0]:.0f} MB"
    assert _target(served) == ROWS


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (gzip.compress(b"3\tthree\n" * 10_000)[:-20], "truncated"),
        (b"3\tthree\n", "not valid gzip"),
        (gzip.compress(b"3\tthree\n") + b"junk", "not valid gzip"),
    ],
    ids=["truncated", "not-gzip", "trailing-junk"],
)
def test_copy_from_broken_gzip_is_400_and_says_what_to_fix(served: Served, body: bytes, fragment: str):
    message = _refused(served.copy_from("COPY target (n, s) FROM STDIN", body), 400, fragment)
    assert "Content-Encoding" in message
    assert _target(served) == ROWS


def test_copy_from_concatenated_gzip_members_load(served: Served):
    served.sql("create table members (n integer, s text)")
    body = gzip.compress(b"1\ta\n2\tb\n") + gzip.compress(b"3\tc\n")
    r = served.copy_from("COPY members (n, s) FROM STDIN", body)
    assert r.status_code == 200 and r.json()["total_rows"] == 3, r.text


# -- table imports (Keboola) ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def client(served: Served) -> Iterator[Client]:
    with Client(served.url, served.token, timeout=240) as c:
        c.buckets.create("bombs")
        c.tables.create("in.c-bombs", "imp", gzip.compress(b"id,v\n1,a\n2,b\n"), primary_key=["id"])
        yield c


IMPORTED = [{"id": "1", "v": "a"}, {"id": "2", "v": "b"}]


def _no_leftovers(served: Served) -> None:
    imports = served.data_dir / "tmp" / "imports"
    assert not imports.exists() or list(imports.iterdir()) == []


def test_table_import_of_a_gzip_bomb_fails_cleanly(served: Served, client: Client):
    bomb = gzip_bomb(3 * GiB, b"1,x\n")
    file_id = client.files.upload(bomb, name="bomb.csv.gz")["id"]
    with peak_growth_mb(served.pid) as growth:
        r = httpx.post(
            f"{served.url}/v2/storage/tables/in.c-bombs.imp/import-async",
            headers={"X-StorageApi-Token": served.token},
            data={"dataFileId": file_id, "incremental": "0"},
        )
        assert r.status_code == 202, r.text
        with pytest.raises(JobFailed) as info:
            client.jobs.wait(r.json()["id"], timeout=240)
    error = info.value
    assert error.code == "csv.inflatedTooLarge"
    assert str(LIMIT) in str(error) and "import_max_inflated_bytes" in str(error)
    assert growth[0] < MAX_GROWTH_MB, f"server peak RSS grew {growth[0]:.0f} MB"
    assert client.tables.preview("in.c-bombs.imp") == IMPORTED
    _no_leftovers(served)


def test_table_create_from_a_gzip_bomb_creates_nothing(served: Served, client: Client):
    with peak_growth_mb(served.pid) as growth, pytest.raises(JobFailed) as info:
        client.tables.create("in.c-bombs", "fresh", gzip_bomb(3 * GiB, b"a,b\n"))
    assert info.value.code == "csv.inflatedTooLarge"
    assert growth[0] < MAX_GROWTH_MB, f"server peak RSS grew {growth[0]:.0f} MB"
    with pytest.raises(NotFound):
        client.tables.get("in.c-bombs.fresh")
    _no_leftovers(served)


def test_table_import_of_truncated_gzip_says_so(served: Served, client: Client):
    broken = gzip.compress(b"id,v\n" + b"3,c\n" * 10_000)[:-30]
    with pytest.raises(JobFailed) as info:
        client.tables.load("in.c-bombs.imp", broken, incremental=True)
    assert info.value.code == "csv.invalidGzip" and "truncated" in str(info.value)
    assert client.tables.preview("in.c-bombs.imp") == IMPORTED
    _no_leftovers(served)


def test_table_import_decides_compression_by_content_never_by_file_name(
    served: Served, client: Client, tmp_path: Path
):
    """The engine never inflates by file name: a zstd file named ``.csv.zst`` is refused as the
    binary it is (never inflated behind the limit's back), a plain CSV named ``.csv.gz`` is read
    as plain CSV (the engine used to fail on it with an error naming the server's file path)."""
    zst = tmp_path / "bomb.csv.zst"
    duckdb.sql(
        f"COPY (SELECT 1 AS id, 'x' AS v FROM range(10000000)) TO '{zst}' (FORMAT csv, COMPRESSION zstd)"
    )
    assert zst.stat().st_size < MiB  # ~40 MB of CSV once inflated
    file_id = client.files.upload(zst)["id"]
    r = httpx.post(
        f"{served.url}/v2/storage/tables/in.c-bombs.imp/import-async",
        headers={"X-StorageApi-Token": served.token},
        data={"dataFileId": file_id, "incremental": "0"},
    )
    assert r.status_code == 202, r.text
    with pytest.raises(JobFailed) as info:
        client.jobs.wait(r.json()["id"], timeout=240)
    assert "UTF-8" in str(info.value) and str(served.data_dir) not in str(info.value)
    assert client.tables.preview("in.c-bombs.imp") == IMPORTED

    client.tables.create("in.c-bombs", "named", b"id,v\n7,plain\n", primary_key=["id"])
    plain = tmp_path / "plain.csv.gz"
    plain.write_bytes(b"id,v\n8,plain after all\n")
    client.tables.load("in.c-bombs.named", plain)
    assert client.tables.preview("in.c-bombs.named") == [{"id": "8", "v": "plain after all"}]
    _no_leftovers(served)
