"""SQL API: queries per second against Datasette, and COPY FROM against PostgreSQL and raw DuckDB.

    python bench/sql_api.py [--rows 1000000] [--seconds 10] [--concurrency 4,32] [--repeat 3]
                            [--skip-postgres] [--json -|PATH]

Data: ``rows`` rows of ``id integer, name text, category integer (0-99), value double
precision, created date``, one CSV made by DuckDB.

* COPY FROM of the whole CSV, wall time (median of ``repeat`` runs, each into a fresh table,
  the loaders interleaved), rows/s and MB/s (of the uncompressed CSV):
  - entrepot: ``POST …/api/v2/sql/copyfrom?q=COPY t (…) FROM STDIN WITH (FORMAT csv, HEADER true)``
    with the file streamed as a chunked body, plain and gzip (compressed beforehand, sent with
    ``Content-Encoding: gzip``), into a table made by ``CREATE TABLE`` over the SQL API;
  - PostgreSQL 15 (throw-away cluster, ``fsync=off``): ``psql -c '\\copy t FROM …'`` into a
    table without and with a primary key, and ``COPY … FROM STDIN`` through psycopg's
    ``cursor.copy()`` (1 MiB writes, as the tables_load benchmark);
  - raw DuckDB, the floor: ``COPY t FROM 'file.csv'`` (and the ``.csv.gz``) into a DuckLake
    table in this process, with the same extensions entrepot loads.
  The data of the COPY FROM is the same CSV; entrepot's plain load is the table ``t`` the
  queries then read.
* Queries: requests/s and latency p50/p99 of
  - ``lookup``: ``select * from t where id = <random id>`` (1 row),
  - ``aggregate``: ``select category, count(*), avg(value) from t where category < 10 group by category``
    (10 rows),
  at each concurrency for ``seconds`` each, against entrepot's SQL API (JSON, POST form
  ``q`` + ``api_key``; the table has no index, DuckLake has none) and Datasette 0.65 on a
  SQLite copy of the data with a unique index on ``id`` (``/db.json?sql=…&_shape=array``,
  immutable mode, default 3 SQL threads). The load generator is one process per connection,
  each with one keep-alive ``http.client`` connection; a trivial endpoint (entrepot
  ``/health``, Datasette ``/-/versions.json``) shows the ceiling of generator + HTTP stack on
  this machine. Every response's status and row count is checked, so errors cannot pass
  for speed. The engine floor: the same queries one after another in this process, on the
  raw DuckDB DuckLake table and on an in-memory DuckDB table.
"""

from __future__ import annotations

import argparse
import gzip
import http.client
import json
import multiprocessing
import random
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import duckdb
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server, _free_port

from entrepot.core.engine import extensions

COLUMNS = "id, name, category, value, created"
PG_COLUMNS = "id integer, name text, category integer, value double precision, created date"
LOOKUP = "select * from t where id = {id}"
AGGREGATE = "select category, count(*), avg(value) from t where category < 10 group by category"
CHUNK = 1 << 20


# -- data ------------------------------------------------------------------------------------


def gen_csv(path: Path, rows: int) -> None:
    con = duckdb.connect()
    con.execute(
        "COPY (SELECT i::INTEGER AS id, 'name_' || i AS name, ((i * 37) % 100)::INTEGER AS category, "
        "((i * 7919) % 100000) / 100.0 AS value, DATE '2020-01-01' + (i % 1500)::INTEGER AS created "
        f"FROM range({rows}) t(i)) TO '{path}' (FORMAT csv, HEADER)"
    )
    con.close()


def gzip_file(src: Path, dst: Path) -> None:
    with open(src, "rb") as f, gzip.open(dst, "wb", compresslevel=6) as g:
        shutil.copyfileobj(f, g, CHUNK)


def make_sqlite(db: Path, csv: Path) -> float:
    """The Datasette copy: same rows, a unique index on id; returns its build time."""
    t0 = time.perf_counter()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE t (id INTEGER, name TEXT, category INTEGER, value REAL, created TEXT)")
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    extensions.load(con, "sqlite_scanner")
    con.execute(f"ATTACH '{db}' AS s (TYPE sqlite)")
    con.execute(
        "INSERT INTO s.t SELECT id, name, category, value, strftime(created, '%Y-%m-%d') "
        f"FROM read_csv('{csv}', header=true)"
    )
    con.close()
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE UNIQUE INDEX t_id ON t (id)")
        conn.execute("ANALYZE")
    return time.perf_counter() - t0


# -- COPY FROM -------------------------------------------------------------------------------


@dataclass
class Copy:
    """One loader's runs (seconds each, a fresh table every time) and the rows the last one loaded."""

    name: str
    runs: list[float]
    rows: int

    @property
    def seconds(self) -> float:
        return statistics.median(self.runs)


Loader = Callable[[int], tuple[float, int]]


def timed_runs(loaders: dict[str, Loader], repeat: int) -> list[Copy]:
    """Run each loader ``repeat`` times, interleaved (a, b, a, b…) so drift hits all alike.

    A loader takes the run number, creates a fresh table (untimed), loads it and returns the
    seconds the load took and the row count the table then holds.
    """
    runs: dict[str, list[float]] = {name: [] for name in loaders}
    rows: dict[str, int] = {}
    for i in range(repeat):
        for name, load in loaders.items():
            seconds, rows[name] = load(i)
            runs[name].append(seconds)
    return [Copy(name, runs[name], rows[name]) for name in loaders]


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def file_chunks(path: Path) -> Iterator[bytes]:
    with open(path, "rb") as f:
        while chunk := f.read(CHUNK):
            yield chunk


def sql(server: Server, q: str, **extra: str) -> dict:
    r = httpx.post(
        f"{server.url}/user/default/api/v2/sql", data={"q": q, "api_key": server.token, **extra}, timeout=600
    )
    if r.status_code != 200:
        raise RuntimeError(f"POST api/v2/sql q={q!r} → {r.status_code} {r.text}")
    return r.json()


def copy_entrepot(server: Server, csv: Path, csv_gz: Path, repeat: int) -> list[Copy]:
    """Plain and gzip COPY FROM; the first plain run loads ``t``, the table the queries read.

    The ``CREATE TABLE`` is outside the timing, the streamed POST inside; the rows are counted after.
    """

    def loader(body: Path, gzipped: bool) -> Loader:
        def load(i: int) -> tuple[float, int]:
            table = "t" if i == 0 and not gzipped else f"t_{'gz' if gzipped else 'plain'}_{i}"
            sql(server, f"CREATE TABLE {table} ({PG_COLUMNS})")
            q = f"COPY {table} ({COLUMNS}) FROM STDIN WITH (FORMAT csv, HEADER true)"
            t0 = time.perf_counter()
            r = httpx.post(
                f"{server.url}/user/default/api/v2/sql/copyfrom",
                params={"q": q, "api_key": server.token},
                content=file_chunks(body),
                headers={"Content-Encoding": "gzip"} if gzipped else {},
                timeout=600,
            )
            seconds = time.perf_counter() - t0
            if r.status_code != 200:
                raise RuntimeError(f"POST copyfrom q={q!r} gzip={gzipped} → {r.status_code} {r.text}")
            return seconds, sql(server, f"select count(*) as n from {table}")["rows"][0]["n"]

        return load

    return timed_runs(
        {
            "entrepot copyfrom, plain body": loader(csv, False),
            "entrepot copyfrom, gzip body": loader(csv_gz, True),
        },
        repeat,
    )


def copy_duckdb(
    tmp: Path, csv: Path, csv_gz: Path, n_rows: int, seconds: float, repeat: int
) -> tuple[list[Copy], list[Load]]:
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    extensions.load(con, "ducklake", "sqlite_scanner")
    con.execute(f"ATTACH 'ducklake:sqlite:{tmp}/raw.sqlite' AS lake (DATA_PATH '{tmp}/raw-data/')")
    con.execute("USE lake")

    def loader(path: Path) -> Loader:
        def load(i: int) -> tuple[float, int]:
            table = f"t_{path.name.replace('.', '_')}_{i}"
            con.execute(f"CREATE TABLE {table} ({PG_COLUMNS.replace('text', 'varchar')})")
            seconds = timed(lambda: con.execute(f"COPY {table} FROM '{path}' (FORMAT csv, HEADER)"))
            return seconds, con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]

        return load

    out = timed_runs(
        {
            "raw DuckDB COPY FROM 'file.csv' into DuckLake": loader(csv),
            "raw DuckDB COPY FROM 'file.csv.gz' into DuckLake": loader(csv_gz),
        },
        repeat,
    )
    # the query floor reads the first plain table, as entrepot's queries read theirs
    con.execute("CREATE VIEW t AS SELECT * FROM t_data_csv_0")
    floor = sequential(con, "raw DuckDB on DuckLake (in process)", n_rows, seconds)
    con.close()
    mem = in_memory(csv)
    floor += sequential(mem, "raw DuckDB in-memory table (in process)", n_rows, seconds)
    mem.close()
    return out, floor


def in_memory(csv: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute(f"CREATE TABLE t AS SELECT * FROM read_csv('{csv}', header=true)")
    return con


def sequential(con: duckdb.DuckDBPyConnection, name: str, n_rows: int, seconds: float) -> list[Load]:
    """The engine floor: the same queries one after another on one connection, no HTTP."""
    rng = random.Random(1)
    out = []
    for query, expect in (("lookup", 1), ("aggregate", 10)):
        latencies: list[float] = []
        errors = 0
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            q = LOOKUP.format(id=rng.randrange(n_rows)) if query == "lookup" else AGGREGATE
            t0 = time.perf_counter()
            rows = con.execute(q).fetchall()
            latencies.append(time.perf_counter() - t0)
            errors += len(rows) != expect
        out.append(_load(name, query, 1, seconds, latencies, errors, len(latencies), ""))
    return out


def copy_postgres(tmp: Path, csv: Path, repeat: int) -> list[Copy] | None:
    from support.postgres import SUPERUSER, PostgresCluster

    cluster = PostgresCluster(tmp / "pg")
    ok, reason = cluster.available()
    if not ok:
        print(f"skipping PostgreSQL: {reason}", file=sys.stderr)
        return None
    cluster.start()
    try:
        import psycopg

        with psycopg.connect(cluster.admin_dsn, autocommit=True) as conn:
            psql = shutil.which("psql") or str(cluster.bin_dir / "psql")  # type: ignore[operator]

            def count(table: str) -> int:
                return conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]

            def psql_copy(primary_key: bool) -> Loader:
                def load(i: int) -> tuple[float, int]:
                    table = f"t_{'pk' if primary_key else 'psql'}_{i}"
                    ddl = (
                        PG_COLUMNS.replace("id integer", "id integer PRIMARY KEY")
                        if primary_key
                        else PG_COLUMNS
                    )
                    conn.execute(f"CREATE TABLE {table} ({ddl})")
                    cmd = [
                        psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", str(cluster.port),
                        "-U", SUPERUSER, "-d", "postgres",
                        "-c", f"\\copy {table} ({COLUMNS}) FROM '{csv}' WITH (FORMAT csv, HEADER true)",
                    ]  # fmt: skip
                    seconds = timed(lambda: subprocess.run(cmd, check=True, capture_output=True))
                    return seconds, count(table)

                return load

            def psycopg_copy(i: int) -> tuple[float, int]:
                table = f"t_psycopg_{i}"
                conn.execute(f"CREATE TABLE {table} ({PG_COLUMNS})")
                t0 = time.perf_counter()
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY {table} ({COLUMNS}) FROM STDIN (FORMAT csv, HEADER)") as copy,
                ):
                    for chunk in file_chunks(csv):
                        copy.write(chunk)
                return time.perf_counter() - t0, count(table)

            return timed_runs(
                {
                    "PostgreSQL psql \\copy": psql_copy(False),
                    "PostgreSQL psql \\copy, primary key on id": psql_copy(True),
                    "PostgreSQL COPY FROM STDIN (psycopg cursor.copy)": psycopg_copy,
                },
                repeat,
            )
    finally:
        cluster.stop()


# -- load generator --------------------------------------------------------------------------


@dataclass
class Target:
    """How to ask one system one query: a request maker and the row count each answer must hold."""

    name: str
    port: int
    request: Callable[[random.Random], tuple[str, str, bytes | None, dict[str, str]]]
    rows: Callable[[bytes], int] | None  # row count of an answer body; None: status only
    expect: int | None


def _client(port: int, target: Target, start_at: float, end_at: float, seed: int, conn_out) -> None:  # type: ignore[no-untyped-def]
    rng = random.Random(seed)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    latencies: list[float] = []
    errors = 0
    checked = 0
    first_error = ""
    while True:
        now = time.monotonic()
        if now >= end_at:
            break
        method, path, body, headers = target.request(rng)
        t0 = time.perf_counter()
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            status = resp.status
        except (OSError, http.client.HTTPException) as e:
            conn.close()
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            status, data = 0, repr(e).encode()
        t1 = time.perf_counter()
        ok = status == 200
        if ok and target.rows is not None:
            try:
                ok = target.rows(data) == target.expect
            except ValueError:
                ok = False
            checked += now >= start_at
        if now < start_at:  # warm-up: connect, first requests
            continue
        if ok:
            latencies.append(t1 - t0)
        else:
            errors += 1
            first_error = first_error or f"{method} {path[:200]} → {status} {data[:300]!r}"
    conn.close()
    conn_out.send((latencies, errors, checked, first_error))
    conn_out.close()


@dataclass
class Load:
    target: str
    query: str
    connections: int
    seconds: float
    requests: int
    errors: int
    checked: int
    p50_ms: float
    p99_ms: float
    first_error: str

    @property
    def rps(self) -> float:
        return self.requests / self.seconds


def run_load(target: Target, query: str, connections: int, seconds: float) -> Load:
    ctx = multiprocessing.get_context("fork")
    warmup = 1.0 + 0.02 * connections
    start_at = time.monotonic() + warmup
    end_at = start_at + seconds
    pipes, procs = [], []
    for i in range(connections):
        parent, child = ctx.Pipe(duplex=False)
        p = ctx.Process(target=_client, args=(target.port, target, start_at, end_at, 1000 + i, child))
        p.start()
        child.close()
        pipes.append(parent)
        procs.append(p)
    latencies: list[float] = []
    errors = checked = 0
    first_error = ""
    for parent in pipes:
        lat, err, chk, first = parent.recv()
        latencies.extend(lat)
        errors += err
        checked += chk
        first_error = first_error or first
    for p in procs:
        p.join()
    return _load(target.name, query, connections, seconds, latencies, errors, checked, first_error)


def _load(
    name: str, query: str, connections: int, seconds: float, latencies: list[float], errors: int, checked: int,
    first_error: str,
) -> Load:  # fmt: skip
    latencies = sorted(latencies)

    def pct(q: float) -> float:
        return (
            latencies[min(len(latencies) - 1, int(q * len(latencies)))] * 1000 if latencies else float("nan")
        )

    return Load(
        name, query, connections, seconds, len(latencies), errors, checked, pct(0.50), pct(0.99), first_error
    )


def entrepot_targets(server: Server, port: int, n_rows: int) -> dict[str, Target]:
    path = "/user/default/api/v2/sql"
    form = {"Content-Type": "application/x-www-form-urlencoded"}
    token = server.token

    def post(q: str) -> tuple[str, str, bytes, dict[str, str]]:
        return "POST", path, urllib.parse.urlencode({"q": q, "api_key": token}).encode(), form

    def rows(body: bytes) -> int:
        return len(json.loads(body)["rows"])

    agg = post(AGGREGATE)
    return {
        "trivial": Target("entrepot /health", port, lambda rng: ("GET", "/health", None, {}), None, None),
        "lookup": Target(
            "entrepot SQL API", port, lambda rng: post(LOOKUP.format(id=rng.randrange(n_rows))), rows, 1
        ),
        "aggregate": Target("entrepot SQL API", port, lambda rng: agg, rows, 10),
    }


def datasette_targets(port: int, db: str, n_rows: int) -> dict[str, Target]:
    def get(q: str) -> tuple[str, str, None, dict[str, str]]:
        return "GET", f"/{db}.json?" + urllib.parse.urlencode({"sql": q, "_shape": "array"}), None, {}

    def rows(body: bytes) -> int:
        return len(json.loads(body))

    agg = get(AGGREGATE)
    return {
        "trivial": Target(
            "Datasette /-/versions.json", port, lambda rng: ("GET", "/-/versions.json", None, {}), None, None
        ),
        "lookup": Target(
            "Datasette", port, lambda rng: get(LOOKUP.format(id=rng.randrange(n_rows))), rows, 1
        ),
        "aggregate": Target("Datasette", port, lambda rng: agg, rows, 10),
    }


class Datasette:
    def __init__(self, tmp: Path, db: Path):
        self.port = _free_port()
        exe = Path(sys.executable).parent / "datasette"
        self.log = open(tmp / "datasette.log", "w+")  # noqa: SIM115
        self.proc = subprocess.Popen(
            [
                str(exe), "serve", "-i", str(db), "--host", "127.0.0.1", "--port", str(self.port),
                "--setting", "sql_time_limit_ms", "30000", "--setting", "max_returned_rows", "1000",
            ],
            stdout=self.log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/-/versions.json").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.1)
            assert time.monotonic() < deadline, "datasette did not start"

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(30)


def run_queries(targets: dict[str, Target], concurrency: list[int], seconds: float) -> list[Load]:
    out = []
    for query in ("trivial", "lookup", "aggregate"):
        for c in concurrency:
            load = run_load(targets[query], query, c, seconds)
            print(
                f"  {load.target:28} {query:9} c={c:<3} {load.rps:8.1f} req/s  p50 {load.p50_ms:7.1f} ms  "
                f"p99 {load.p99_ms:7.1f} ms  errors {load.errors}",
                file=sys.stderr,
                flush=True,
            )
            if load.first_error:
                print(f"    first error: {load.first_error}", file=sys.stderr)
            out.append(load)
    return out


# -- main ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--concurrency", default="4,32", help="comma-separated connection counts")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each COPY FROM (median reported)")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--json", default="-", help="where to write the results as JSON ('-': stdout)")
    args = parser.parse_args()
    concurrency = [int(c) for c in args.concurrency.split(",")]

    with tempfile.TemporaryDirectory(prefix="bench-sql-") as tmp_name:
        tmp = Path(tmp_name)
        csv, csv_gz, db = tmp / "data.csv", tmp / "data.csv.gz", tmp / "bench.db"
        gen_csv(csv, args.rows)
        gzip_file(csv, csv_gz)
        mb = csv.stat().st_size / 1e6
        sqlite_s = make_sqlite(db, csv)
        print(
            f"{args.rows:,} rows: CSV {mb:.0f} MB, gzip {csv_gz.stat().st_size / 1e6:.0f} MB; "
            f"SQLite copy {db.stat().st_size / 1e6:.0f} MB (built in {sqlite_s:.1f} s)",
            flush=True,
        )

        copies, loads = copy_duckdb(tmp, csv, csv_gz, args.rows, args.seconds, args.repeat)
        if not args.skip_postgres:
            copies += copy_postgres(tmp, csv, args.repeat) or []
        server = Server(tmp)
        try:
            copies += copy_entrepot(server, csv, csv_gz, args.repeat)
            copy_rss = server.peak_rss_mb()
            port = int(server.url.rsplit(":", 1)[1])
            print("queries:", file=sys.stderr, flush=True)
            loads += run_queries(entrepot_targets(server, port, args.rows), concurrency, args.seconds)
            query_rss = server.peak_rss_mb()
        finally:
            server.stop()
        datasette = Datasette(tmp, db)
        try:
            loads += run_queries(
                datasette_targets(datasette.port, db.stem, args.rows), concurrency, args.seconds
            )
        finally:
            datasette.stop()

    floor = next(c.seconds for c in copies if c.name.startswith("raw DuckDB") and "csv.gz" not in c.name)
    print(
        f"\nCOPY FROM, {args.rows:,} rows, {mb:.0f} MB CSV; median of {args.repeat} runs "
        "(MB/s of the uncompressed CSV)\n"
    )
    print("| loader | median s | runs s | rows/s | MB/s | x raw DuckDB | rows loaded |")
    print("|---|---|---|---|---|---|---|")
    for c in copies:
        runs = " / ".join(f"{r:.2f}" for r in c.runs)
        print(
            f"| {c.name} | {c.seconds:.2f} | {runs} | {args.rows / c.seconds:,.0f} | {mb / c.seconds:.0f} | "
            f"{c.seconds / floor:.2f}x | {c.rows:,} |"
        )
    print(
        f"\nentrepot server peak RSS after the loads: {copy_rss:.0f} MB; after the queries: {query_rss:.0f} MB"
    )
    print(f"\nQueries, {args.seconds:g} s per row, one process + keep-alive connection per client\n")
    print("| target | query | conns | req/s | p50 ms | p99 ms | errors | bodies checked |")
    print("|---|---|---|---|---|---|---|---|")
    for q in ("trivial", "lookup", "aggregate"):
        for load in loads:
            if load.query == q:
                print(
                    f"| {load.target} | {q} | {load.connections} | {load.rps:,.0f} | {load.p50_ms:.1f} | "
                    f"{load.p99_ms:.1f} | {load.errors} | {load.checked} |"
                )
    result = {
        "rows": args.rows,
        "csv_mb": round(mb, 1),
        "seconds": args.seconds,
        "repeat": args.repeat,
        "copy": [
            {
                "loader": c.name,
                "seconds": round(c.seconds, 3),
                "runs": [round(r, 3) for r in c.runs],
                "rows_per_s": round(args.rows / c.seconds),
                "mb_per_s": round(mb / c.seconds, 1),
                "rows_loaded": c.rows,
            }
            for c in copies
        ],
        "server_peak_rss_mb": {"after_copy": round(copy_rss), "after_queries": round(query_rss)},
        "queries": [
            {
                "target": x.target,
                "query": x.query,
                "connections": x.connections,
                "requests": x.requests,
                "rps": round(x.rps, 1),
                "p50_ms": round(x.p50_ms, 2),
                "p99_ms": round(x.p99_ms, 2),
                "errors": x.errors,
                "checked": x.checked,
                "first_error": x.first_error,
            }
            for x in loads
        ],
    }
    text = json.dumps(result, indent=None)
    if args.json == "-":
        print("\n" + text)
    else:
        Path(args.json).write_text(text + "\n")
        print(f"\nJSON results written to {args.json}")


if __name__ == "__main__":
    main()
