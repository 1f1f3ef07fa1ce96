"""Tables: create from CSV, incremental upsert and export through entrepot's HTTP API,
against raw DuckDB (into a DuckLake table) and PostgreSQL in the same run.

    python bench/tables_load.py [--rows 1000000] [--big-rows 10000000] [--skip-postgres]

* create: a ``rows``-row CSV (id, name, value, city) → a new table. entrepot: upload +
  ``tables-async`` job, wall time until the job is done. DuckDB: ``CREATE TABLE AS SELECT *
  FROM read_csv(...)`` into a DuckLake table with the same extension set. PostgreSQL:
  ``COPY ... FROM STDIN`` (what ``psql \\copy`` does) into a fresh table with a primary key.
* upsert: 10 % of the rows changed and 1 % new, loaded incrementally by primary key.
  DuckDB: stage, ``DELETE ... USING`` + ``INSERT``; PostgreSQL: ``COPY`` into a temp table
  + ``INSERT ... ON CONFLICT DO UPDATE``.
* export: the whole table to CSV (entrepot: ``export-async`` job plus the download of the
  headed CSV) and to gzip CSV (entrepot: the job only); DuckDB: ``COPY (SELECT ...) TO``.
* RSS: the server process's peak resident memory while it exports ``big-rows`` rows.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from entrepot.client import Client

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server

from entrepot.core.engine import extensions


def gen_csv(path: Path, rows: int, *, start: int = 0, changed: bool = False) -> None:
    con = duckdb.connect()
    tag = "'changed_'" if changed else "'name_'"
    con.execute(
        f"COPY (SELECT i AS id, {tag} || i AS name, (i * 7) % 1000 AS value, 'city_' || (i % 97) AS city "
        f"FROM range({start}, {start + rows}) t(i)) TO '{path}' (FORMAT csv, HEADER)"
    )
    con.close()


def upsert_csv(path: Path, rows: int) -> None:
    """10 % of existing ids changed, plus 1 % new ids."""
    con = duckdb.connect()
    con.execute(
        f"COPY (SELECT i AS id, 'changed_' || i AS name, 1 AS value, 'city_x' AS city FROM range(0, {rows}, 10) t(i) "
        f"UNION ALL SELECT i, 'new_' || i, 2, 'city_y' FROM range({rows}, {rows + rows // 100}) t(i)) "
        f"TO '{path}' (FORMAT csv, HEADER)"
    )
    con.close()


def timed(fn) -> float:  # type: ignore[no-untyped-def]
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def duckdb_lake(tmp: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    extensions.load(con, "ducklake", "sqlite_scanner")
    con.execute(f"ATTACH 'ducklake:sqlite:{tmp}/raw.sqlite' AS lake (DATA_PATH '{tmp}/raw-data/')")
    con.execute("USE lake")
    return con


def bench_duckdb(tmp: Path, data: Path, upsert: Path) -> dict[str, float]:
    con = duckdb_lake(tmp)
    out: dict[str, float] = {}
    read = "read_csv('{}', header=true, all_varchar=true, strict_mode=true)"
    out["create"] = timed(
        lambda: con.execute(f"CREATE TABLE t AS SELECT *, now() AS _ts FROM {read.format(data)}")
    )

    def do_upsert() -> None:
        con.execute("BEGIN")
        con.execute(f"CREATE TEMP TABLE s AS SELECT *, now() AS _ts FROM {read.format(upsert)}")
        con.execute("DELETE FROM t USING temp.s WHERE t.id = s.id")
        con.execute("INSERT INTO t SELECT * FROM temp.s")
        con.execute("COMMIT")

    out["upsert"] = timed(do_upsert)
    q = "SELECT id, name, value, city FROM t"
    out["export csv"] = timed(
        lambda: con.execute(f"COPY ({q}) TO '{tmp}/raw.csv' (FORMAT csv, FORCE_QUOTE *)")
    )
    out["export gzip"] = timed(
        lambda: con.execute(f"COPY ({q}) TO '{tmp}/raw.csv.gz' (FORMAT csv, FORCE_QUOTE *, COMPRESSION gzip)")
    )
    con.close()
    return out


def bench_postgres(tmp: Path, data: Path, upsert: Path) -> dict[str, float] | None:
    from support.postgres import PostgresCluster

    cluster = PostgresCluster(tmp / "pg")
    ok, reason = cluster.available()
    if not ok:
        print(f"skipping PostgreSQL: {reason}", file=sys.stderr)
        return None
    cluster.start()
    try:
        import psycopg

        dsn = cluster.admin_dsn
        out: dict[str, float] = {}
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute("CREATE TABLE t (id text PRIMARY KEY, name text, value text, city text)")

            def copy_in(table: str, path: Path) -> None:
                with (
                    conn.cursor() as cur,
                    cur.copy(f"COPY {table} FROM STDIN (FORMAT csv, HEADER)") as copy,
                    open(path, "rb") as f,
                ):
                    while chunk := f.read(1 << 20):
                        copy.write(chunk)

            out["create"] = timed(lambda: copy_in("t", data))

            def do_upsert() -> None:
                with conn.transaction():
                    conn.execute(
                        "CREATE TEMP TABLE s (id text, name text, value text, city text) ON COMMIT DROP"
                    )
                    copy_in("s", upsert)
                    conn.execute(
                        "INSERT INTO t SELECT * FROM s ON CONFLICT (id) DO UPDATE SET name = excluded.name, "
                        "value = excluded.value, city = excluded.city"
                    )

            out["upsert"] = timed(do_upsert)

            def copy_out() -> None:
                with (
                    conn.cursor() as cur,
                    cur.copy("COPY t TO STDOUT (FORMAT csv, FORCE_QUOTE *)") as copy,
                    open(tmp / "pg.csv", "wb") as f,
                ):
                    for chunk in copy:
                        f.write(chunk)

            out["export csv"] = timed(copy_out)
        return out
    finally:
        cluster.stop()


def bench_entrepot(
    tmp: Path, data: Path, upsert: Path, big: Path | None
) -> tuple[dict[str, float], float | None]:
    server = Server(tmp)
    out: dict[str, float] = {}
    peak: float | None = None
    try:
        with Client(server.url, server.token, timeout=600) as client:
            client.buckets.create("bench")
            out["create"] = timed(lambda: client.tables.create("in.c-bench", "t", data, primary_key=["id"]))
            out["upsert"] = timed(lambda: client.tables.load("in.c-bench.t", upsert, incremental=True))
            out["export csv"] = timed(lambda: client.tables.export("in.c-bench.t", tmp / "entrepot.csv"))

            def export_gzip() -> None:  # the job writes the gzip file; nothing is downloaded
                r = httpx.post(
                    f"{server.url}/v2/storage/tables/in.c-bench.t/export-async",
                    headers={"X-StorageApi-Token": server.token},
                    data={"gzip": "1"},
                    timeout=600,
                )
                r.raise_for_status()
                client.jobs.wait(r.json()["id"])

            out["export gzip"] = timed(export_gzip)
            if big is not None:
                create_peak = [0.0]
                stop_create = threading.Event()

                def sample_create() -> None:
                    while not stop_create.is_set():
                        create_peak[0] = max(create_peak[0], server.rss_mb())
                        time.sleep(0.05)

                watcher = threading.Thread(target=sample_create)
                watcher.start()
                out["create big"] = timed(lambda: client.tables.create("in.c-bench", "big", big))
                stop_create.set()
                watcher.join()
                print(
                    f"server peak RSS while creating the big table: {create_peak[0]:.0f} MB", file=sys.stderr
                )
    finally:
        server.stop()
    if big is None:
        return out, peak
    # the export on a server restarted over the same data: its memory, not the import's leftovers
    server = Server(tmp, token=server.token)
    try:
        with Client(server.url, server.token, timeout=600) as client:
            samples: list[float] = []
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    samples.append(server.rss_mb())
                    time.sleep(0.05)

            baseline = server.rss_mb()
            sampler = threading.Thread(target=sample)
            sampler.start()
            out["export big"] = timed(lambda: client.tables.export("in.c-bench.big", tmp / "big-out.csv"))
            stop.set()
            sampler.join()
            peak = max(samples)
            print(f"server RSS before the big export: {baseline:.0f} MB", file=sys.stderr)
    finally:
        server.stop()
    return out, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-tables-"))
    data, upsert = tmp / "data.csv", tmp / "upsert.csv"
    gen_csv(data, args.rows)
    upsert_csv(upsert, args.rows)
    big = None
    if args.big_rows:
        big = tmp / "big.csv"
        gen_csv(big, args.big_rows)
    print(
        f"{args.rows:,} rows, {data.stat().st_size / 1e6:.0f} MB CSV; upsert file {upsert.stat().st_size / 1e6:.0f} MB"
    )
    raw = bench_duckdb(tmp, data, upsert)
    pg = None if args.skip_postgres else bench_postgres(tmp, data, upsert)
    ours, peak = bench_entrepot(tmp, data, upsert, big)
    print("\n| operation | entrepot (HTTP) s | raw DuckDB s | ratio | PostgreSQL s |")
    print("|---|---|---|---|---|")
    for op in ("create", "upsert", "export csv", "export gzip"):
        if op not in ours and op not in raw:
            continue
        e, d = ours.get(op), raw.get(op)
        ratio = f"{e / d:.2f}x" if e and d else ""
        p = (pg or {}).get(op)
        fmt = lambda v: f"{v:.2f}" if v is not None else "—"  # noqa: E731
        print(f"| {op} | {fmt(e)} | {fmt(d)} | {ratio} | {fmt(p)} |")
    if peak is not None:
        print(f"\nserver peak RSS while exporting {args.big_rows:,} rows: {peak:.0f} MB "
              f"(export took {ours['export big']:.1f} s)")  # fmt: skip


if __name__ == "__main__":
    main()
