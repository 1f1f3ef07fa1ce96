"""Export API: csv, json, json lines, parquet and excel exports against raw DuckDB ``COPY … TO``.

    python bench/exports.py [--rows 1000000] [--big-rows 10000000] [--skip-big] [--repeat 3]
                            [--investigate] [--server-env ENTREPOT_ENGINE_THREADS=1 ...]

Data: one typed table of ``rows`` rows, ``id bigint, name, email, city varchar, amount varchar
('1234.56'), created varchar ('2024-01-15')``, made in a fresh ``entrepot serve`` (SQLite
catalog, local blob store) by ``CREATE TABLE t AS SELECT … FROM range(…)`` over the SQL API
(the fastest way in: no CSV to upload or parse; 2M rows a statement, each under the SQL API's
time limit), and ``big-rows`` rows of the same shape in a second table.

* entrepot, per format: wall time from ``POST /data-tools/api/v1/exports/`` until a poll of
  ``GET /exports/<id>/`` (every 50 ms) sees ``completed``; then, separately, the download
  (``GET /exports/<id>/download/`` streamed to a file). Row count and file size are the job's;
  the server's RSS (``VmRSS`` of the ``entrepot serve`` process) is sampled every 50 ms from
  before the POST until completion. Excel holds at most 1,048,575 data rows, so its export has
  ``filters.limit = 1,000,000`` when the table is larger (entrepot then orders by ``rowid`` for
  a deterministic choice of rows; the raw peer does the same).
* raw DuckDB, the floor (same duckdb version, same bundled extensions, in this process, with the
  server lake's settings: threads, memory_limit, ``preserve_insertion_order = false``):
  ``COPY (SELECT … FROM lake."in.c-public".t) TO 'file' (FORMAT …)`` on a copy of the server's
  DuckLake (catalog and Parquet files, attached read-only once the server has stopped), and on a
  plain in-memory DuckDB table holding the same rows, for reference.
* The formats are run ``repeat`` times, interleaved (entrepot, raw DuckLake, raw in-memory, next
  format, …) so drift hits all alike; the median is reported.
* Memory: the ``big-rows`` table exported to csv and parquet, each on a freshly started server:
  RSS of the started server, RSS after a one-row export of the same format (the lake is open,
  the writer's code loaded), and the peak during the export. ``--server-env`` passes ``ENTREPOT_*``
  settings (e.g. ``ENTREPOT_ENGINE_THREADS=1``) to every server of the run.
* ``--investigate``: raw DuckDB's memory for the same big COPY, one fresh process per setting
  (threads, memory_limit, preserve_insertion_order, Parquet ROW_GROUP_SIZE), and the cost of the
  export job's store step (``LocalBlobStore.put_file(move=True)``) on files of each size.
* Every completed export must carry its file: one that completes without (``file_size`` null, the
  download answers 410) is counted, reported, and run again.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server

from entrepot.config import Settings
from entrepot.core.engine import extensions

API = "/data-tools/api/v1"
SCHEMA = "in.c-public"  # the bucket of tables created over the SQL API
COLUMNS = ("id", "name", "email", "city", "amount", "created")
EXCEL_LIMIT = 1_000_000
CHUNK_ROWS = 2_000_000  # rows per CREATE/INSERT statement: each stays under the SQL API's time limit
POLL = 0.05


@dataclass(frozen=True)
class Format:
    """One export format: the request's format and options, and raw DuckDB's COPY options."""

    name: str
    format: str
    options: dict[str, Any]
    copy: str
    extension: str


FORMATS = (
    Format("csv", "csv", {}, "FORMAT csv, HEADER true", "csv"),
    Format("json (array)", "json", {}, "FORMAT json, ARRAY true", "json"),
    Format("json lines", "json", {"json_format": "lines"}, "FORMAT json, ARRAY false", "jsonl"),
    Format(
        "parquet (snappy)",
        "parquet",
        {},
        "FORMAT parquet, COMPRESSION snappy, ROW_GROUP_SIZE 32768",
        "parquet",
    ),
    Format("excel", "excel", {}, "FORMAT xlsx, HEADER true, SHEET 'Sheet1'", "xlsx"),
)


def select_sql(ref: str, rows: int | None) -> str:
    """The raw peer's SELECT; with ``rows``, the first rows by ``rowid`` (what entrepot's limit does)."""
    sql = f"SELECT {', '.join(COLUMNS)} FROM {ref}"
    return sql + f" ORDER BY rowid LIMIT {rows}" if rows is not None else sql


def lake_ref(table: str) -> str:
    return f'lake."{SCHEMA}".{table}'


def table_select(start: int, stop: int) -> str:
    return (
        "SELECT i::BIGINT AS id, 'name_' || i AS name, 'user' || i || '@example.com' AS email, "
        "'city_' || (i % 97) AS city, CAST(((i * 7919) % 1000000) / 100.0 AS VARCHAR) AS amount, "
        "CAST(DATE '2020-01-01' + CAST(i % 1500 AS INTEGER) AS VARCHAR) AS created "
        f"FROM range({start}, {stop}) r(i)"
    )


# -- entrepot ----------------------------------------------------------------------------------


class Api:
    exports = 0  # exports completed, over every server of the run
    lost = 0  # of which completed without a file

    def __init__(self, server: Server):
        self.server = server
        self.http = httpx.Client(
            base_url=server.url, headers={"X-StorageApi-Token": server.token}, timeout=3600
        )

    def close(self) -> None:
        self.http.close()

    def sql(self, q: str) -> dict[str, Any]:
        r = self.http.post("/user/default/api/v2/sql", data={"q": q, "api_key": self.server.token})
        if r.status_code != 200:
            raise RuntimeError(f"POST api/v2/sql q={q[:200]!r} → {r.status_code} {r.text[:500]}")
        return r.json()

    def datasource(self, table: str) -> str:
        r = self.http.get(f"{API}/datasources/", params={"search": table})
        r.raise_for_status()
        found = [d for d in r.json()["data"]["datasources"] if d["table_id"] == f"{SCHEMA}.{table}"]
        assert found, f"no datasource for {SCHEMA}.{table}: {r.text[:500]}"
        return found[0]["id"]

    def export(self, body: dict[str, Any]) -> tuple[dict[str, Any], float]:
        """POST the export and poll until it is done; the final job and the wall seconds.

        An export that completes without a file (``file_size`` null, the download answers 410) is
        counted in ``lost`` and run again. Before commit e473a8a a fast worker could run the job
        before the export row knew its job id, and the job skipped itself that way (9 of 60).
        """
        for _ in range(5):
            t0 = time.perf_counter()
            r = self.http.post(f"{API}/exports/", json=body)
            if r.status_code != 201:
                raise RuntimeError(f"POST exports → {r.status_code} {r.text[:500]}")
            job_id = r.json()["data"]["id"]
            while True:
                r = self.http.get(f"{API}/exports/{job_id}/")
                r.raise_for_status()
                job = r.json()["data"]
                if job["status"] in ("completed", "failed", "cancelled"):
                    break
                time.sleep(POLL)
            seconds = time.perf_counter() - t0
            if job["status"] != "completed":
                raise RuntimeError(f"export {body} ended {job['status']}: {job['error_message']}")
            Api.exports += 1
            if job["file_size"] is not None:
                return job, seconds
            Api.lost += 1
            self.delete(job)
        raise RuntimeError(f"export {body} completed without a file 5 times")

    def download(self, job: dict[str, Any], path: Path) -> float:
        t0 = time.perf_counter()
        with self.http.stream("GET", f"{API}/exports/{job['id']}/download/") as r, path.open("wb") as f:
            r.raise_for_status()
            for chunk in r.iter_bytes(1 << 20):
                f.write(chunk)
        seconds = time.perf_counter() - t0
        assert path.stat().st_size == job["file_size"], (path.stat().st_size, job["file_size"])
        return seconds

    def delete(self, job: dict[str, Any]) -> None:
        self.http.delete(f"{API}/exports/{job['id']}/").raise_for_status()


class RssSampler:
    """The server's VmRSS every 50 ms while the ``with`` block runs."""

    def __init__(self, server: Server):
        self.server = server
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.samples.append(self.server.rss_mb())
            self._stop.wait(0.05)

    def __enter__(self) -> RssSampler:
        self.baseline = self.server.rss_mb()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.samples.append(self.server.rss_mb())

    @property
    def peak(self) -> float:
        return max(self.samples)


def create_table(api: Api, name: str, rows: int) -> float:
    t0 = time.perf_counter()
    for start in range(0, rows, CHUNK_ROWS):
        stop = min(rows, start + CHUNK_ROWS)
        verb = f"CREATE TABLE {name} AS" if start == 0 else f"INSERT INTO {name}"
        api.sql(f"{verb} {table_select(start, stop)}")
    seconds = time.perf_counter() - t0
    n = api.sql(f"SELECT count(*) AS n FROM {name}")["rows"][0]["n"]
    assert n == rows, (n, rows)
    return seconds


@dataclass
class Run:
    """One system's runs of one format."""

    seconds: list[float] = field(default_factory=list)
    download: list[float] = field(default_factory=list)
    rows: int = 0
    size: int = 0
    baseline: float = 0.0
    peak: float = 0.0

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)


def entrepot_body(datasource: str, fmt: Format, limit: int | None) -> dict[str, Any]:
    body: dict[str, Any] = {"datasource": datasource, "format": fmt.format}
    if fmt.options:
        body["options"] = fmt.options
    if limit is not None:
        body["filters"] = {"limit": limit}
    return body


def warm_up(api: Api, datasource: str, fmt: Format) -> None:
    """One single-row export of ``fmt``: opens the lake and loads the writer's code before measuring."""
    body = entrepot_body(datasource, fmt, None)
    body["filters"] = {"where_conditions": [{"column": "id", "operator": "=", "value": 0}]}
    job, _ = api.export(body)
    api.delete(job)


def entrepot_once(api: Api, datasource: str, fmt: Format, limit: int | None, out: Path, run: Run) -> None:
    with RssSampler(api.server) as rss:
        job, seconds = api.export(entrepot_body(datasource, fmt, limit))
    download = api.download(job, out)
    api.delete(job)
    run.seconds.append(seconds)
    run.download.append(download)
    run.rows, run.size = job["row_count"], job["file_size"]
    run.baseline = rss.baseline if not run.baseline else min(run.baseline, rss.baseline)
    run.peak = max(run.peak, rss.peak)
    out.unlink()


# -- raw DuckDB --------------------------------------------------------------------------------


def raw_config(settings: Settings) -> dict[str, Any]:
    """The settings of the server's lake instances (``core/engine/lake.py``)."""
    return {
        "threads": settings.engine_threads,
        "memory_limit": settings.engine_memory_limit,
        "preserve_insertion_order": False,
    }


def raw_lake(lake: Path, settings: Settings) -> duckdb.DuckDBPyConnection:
    con = extensions.connect(config=raw_config(settings))
    extensions.load(con, "ducklake", "sqlite_scanner", "excel")
    con.execute(
        f"ATTACH 'ducklake:sqlite:{lake}/catalog.sqlite' AS lake "
        f"(DATA_PATH '{lake}/data/', OVERRIDE_DATA_PATH true, READ_ONLY)"
    )
    return con


def raw_memory(lake: Path, settings: Settings) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB table holding the lake table's rows (the lake is detached after)."""
    con = raw_lake(lake, settings)
    con.execute(f"CREATE TABLE memory.t AS {select_sql(lake_ref('t'), None)}")
    con.execute("DETACH lake")
    return con


def raw_once(
    con: duckdb.DuckDBPyConnection, ref: str, fmt: Format, limit: int | None, out: Path, run: Run
) -> None:
    t0 = time.perf_counter()
    row = con.execute(f"COPY ({select_sql(ref, limit)}) TO '{out}' ({fmt.copy})").fetchone()
    run.seconds.append(time.perf_counter() - t0)
    run.rows, run.size = int(row[0]) if row else 0, out.stat().st_size
    out.unlink()


# -- main --------------------------------------------------------------------------------------


@dataclass
class Big:
    name: str
    run: Run
    fresh: float  # RSS of the started server, before anything
    hwm: float  # VmHWM after the export


def big_exports(tmp: Path, token: str, env: dict[str, str]) -> list[Big]:
    """The big table to csv and parquet, each on a freshly started server (after a 1-row warm-up)."""
    out = []
    for fmt in (FORMATS[0], FORMATS[3]):
        server = Server(tmp, token=token, **env)
        api = Api(server)
        try:
            time.sleep(1.0)  # let the start settle (imports, first catalog queries)
            fresh = server.rss_mb()
            datasource = api.datasource("big")
            warm_up(api, datasource, fmt)
            time.sleep(0.5)
            run = Run()
            entrepot_once(api, datasource, fmt, None, tmp / f"big.{fmt.extension}", run)
            out.append(Big(fmt.name, run, fresh, server.peak_rss_mb()))
            print(
                f"  big {fmt.name}: {run.seconds[0]:.1f} s, {run.rows:,} rows, {run.size / 1e6:.0f} MB, "
                f"RSS fresh {fresh:.0f}, after warm-up {run.baseline:.0f} → peak {run.peak:.0f} MB",
                file=sys.stderr,
                flush=True,
            )
        finally:
            api.close()
            server.stop()
    return out


# -- investigation: which knob moves the memory, and the store step ---------------------------

KNOBS: tuple[tuple[str, dict[str, Any], str], ...] = (
    ("the lake's settings (threads 2, memory_limit 512MB, preserve_insertion_order false)", {}, ""),
    ("threads 1", {"threads": 1}, ""),
    ("memory_limit 128MB", {"memory_limit": "128MB"}, ""),
    ("preserve_insertion_order true", {"preserve_insertion_order": True}, ""),
    ("parquet ROW_GROUP_SIZE 32768 (default 122880)", {}, ", ROW_GROUP_SIZE 32768"),
    ("threads 1 + parquet ROW_GROUP_SIZE 32768", {"threads": 1}, ", ROW_GROUP_SIZE 32768"),
)


def _status_mb(field_name: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field_name + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def knob_child(lake: str, config: str, fmt_name: str, extra: str, out: str) -> None:
    """In a fresh process: open the lake as the server does, run one query, then COPY the big table.

    Prints JSON: RSS after the lake is open and queried once, VmHWM after the COPY, and the seconds.
    """
    import json

    fmt = next(f for f in FORMATS if f.name == fmt_name)
    con = extensions.connect(
        config={
            "threads": 2,
            "memory_limit": "512MB",
            "preserve_insertion_order": False,
            **json.loads(config),
        }
    )
    extensions.load(con, "ducklake", "sqlite_scanner")
    con.execute(
        f"ATTACH 'ducklake:sqlite:{lake}/catalog.sqlite' AS lake "
        f"(DATA_PATH '{lake}/data/', OVERRIDE_DATA_PATH true, READ_ONLY)"
    )
    imported = _status_mb("VmRSS")
    con.execute(f'SELECT * FROM lake."{SCHEMA}".big WHERE id = 0').fetchall()
    ready = _status_mb("VmRSS")
    t0 = time.perf_counter()
    con.execute(f"COPY ({select_sql(lake_ref('big'), None)}) TO '{out}' ({fmt.copy}{extra})")
    seconds = time.perf_counter() - t0
    print(json.dumps({"attached": imported, "ready": ready, "hwm": _status_mb("VmHWM"), "seconds": seconds}))


def investigate(tmp: Path, lake: Path, big_rows: int) -> list[str]:
    """Raw DuckDB, one fresh process per setting: the COPY's growth over an opened lake; and the store step."""
    import json
    import subprocess

    lines = [
        f"\nRaw DuckDB, {big_rows:,} rows, one fresh process per row: RSS once the lake is open and queried, "
        "peak (VmHWM) during the COPY\n",
        "| setting | format | ready MB | peak MB | growth MB | COPY s | file MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for label, config, extra in KNOBS:
        for fmt in (FORMATS[0], FORMATS[3]):
            if extra and fmt.format != "parquet":
                continue
            out = tmp / f"knob.{fmt.extension}"
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--knob-child",
                    str(lake),
                    json.dumps(config),
                    fmt.name,
                    extra,
                    str(out),
                ],
                check=True,
                capture_output=True,
                text=True,
            )
            r = json.loads(child.stdout.strip().splitlines()[-1])
            lines.append(
                f"| {label} | {fmt.name} | {r['ready']:.0f} | {r['hwm']:.0f} | {r['hwm'] - r['ready']:+.0f} | "
                f"{r['seconds']:.1f} | {out.stat().st_size / 1e6:.0f} |"
            )
            print("  " + lines[-1], file=sys.stderr, flush=True)
            out.unlink()
    # the store step of exports.run: LocalBlobStore.put_file(move=True) reads the file back for MD5 and
    # SHA-256 and fsyncs it before the rename
    from entrepot.core.blobs.local import LocalBlobStore

    store = LocalBlobStore(tmp / "blobs")
    lines += [
        "\nThe store step of an export (`LocalBlobStore.put_file(move=True)`: read back, MD5 + SHA-256, fsync, "
        "rename) after raw DuckDB's COPY of the same file\n",
        "| file | MB | COPY s | put_file(move) s |",
        "|---|---|---|---|",
    ]
    con = raw_lake(lake, Settings())
    try:
        for table, fmt in (("t", FORMATS[0]), ("big", FORMATS[0]), ("big", FORMATS[3])):
            out = tmp / "blobs" / f"tmp-{table}.{fmt.extension}"
            t0 = time.perf_counter()
            con.execute(f"COPY ({select_sql(lake_ref(table), None)}) TO '{out}' ({fmt.copy})")
            t1 = time.perf_counter()
            size = out.stat().st_size
            store.put_file(f"exports/{table}.{fmt.extension}", out, move=True)
            t2 = time.perf_counter()
            lines.append(f"| {table} {fmt.name} | {size / 1e6:.0f} | {t1 - t0:.2f} | {t2 - t1:.2f} |")
            print("  " + lines[-1], file=sys.stderr, flush=True)
            store.delete(f"exports/{table}.{fmt.extension}")
    finally:
        con.close()
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--big-rows", type=int, default=10_000_000)
    parser.add_argument("--skip-big", action="store_true", help="no big table, no memory measurement")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each format (median reported)")
    parser.add_argument(
        "--investigate",
        action="store_true",
        help="also: raw DuckDB's memory for the big COPY under other settings, and the store step's cost",
    )
    parser.add_argument("--knob-child", nargs=5, help=argparse.SUPPRESS)
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an ENTREPOT_* setting for the server (repeatable), e.g. ENTREPOT_ENGINE_THREADS=1",
    )
    args = parser.parse_args()
    if args.knob_child:
        knob_child(*args.knob_child)
        return
    env = dict(kv.split("=", 1) for kv in args.server_env)
    settings = Settings(**{k.removeprefix("ENTREPOT_").lower(): v for k, v in env.items()})
    excel_limit = EXCEL_LIMIT if args.rows > EXCEL_LIMIT else None

    with tempfile.TemporaryDirectory(prefix="bench-exports-") as tmp_name:
        tmp = Path(tmp_name)
        # 1. the tables, in a fresh server
        server = Server(tmp, **env)
        api = Api(server)
        try:
            create_s = create_table(api, "t", args.rows)
            print(f"created t: {args.rows:,} rows in {create_s:.1f} s", file=sys.stderr, flush=True)
            big_s = None
            if not args.skip_big:
                big_s = create_table(api, "big", args.big_rows)
                print(f"created big: {args.big_rows:,} rows in {big_s:.1f} s", file=sys.stderr, flush=True)
        finally:
            api.close()
            server.stop()
        token = server.token
        lake_dir = tmp / "data" / "lakes" / "default"
        raw_dir = tmp / "raw-lake"
        shutil.copytree(lake_dir, raw_dir)  # the raw peer's copy: catalog and Parquet files

        # 2. the memory of big exports, each on a fresh server
        big = [] if args.skip_big else big_exports(tmp, token, env)
        findings = investigate(tmp, raw_dir, args.big_rows) if args.investigate and not args.skip_big else []

        # 3. every format, entrepot and raw DuckDB interleaved
        lake = raw_lake(raw_dir, settings)
        mem = raw_memory(raw_dir, settings)
        ref_lake = lake_ref("t")
        runs: dict[tuple[str, str], Run] = {}
        server = Server(tmp, token=token, **env)
        api = Api(server)
        try:
            datasource = api.datasource("t")
            fresh_rss = server.rss_mb()
            for fmt in FORMATS:
                warm_up(api, datasource, fmt)
            for i in range(args.repeat):
                for fmt in FORMATS:
                    limit = excel_limit if fmt.format == "excel" else None
                    out = tmp / f"out.{fmt.extension}"
                    doers: dict[str, Callable[[Run], None]] = {
                        "entrepot": lambda run, f=fmt, lim=limit, o=out: entrepot_once(
                            api, datasource, f, lim, o, run
                        ),
                        "raw DuckLake": lambda run, f=fmt, lim=limit, o=out: raw_once(
                            lake, ref_lake, f, lim, o, run
                        ),
                        "raw in-memory": lambda run, f=fmt, lim=limit, o=out: raw_once(
                            mem, "t", f, lim, o, run
                        ),
                    }
                    for system, do in doers.items():
                        do(runs.setdefault((fmt.name, system), Run()))
                    print(
                        f"  run {i + 1} {fmt.name}: "
                        + ", ".join(f"{s} {runs[(fmt.name, s)].seconds[-1]:.2f} s" for s in doers),
                        file=sys.stderr,
                        flush=True,
                    )
            hwm = server.peak_rss_mb()
        finally:
            api.close()
            server.stop()
            lake.close()
            mem.close()

    print(f"\n{args.rows:,} rows (id, name, email, city, amount, created); median of {args.repeat} runs")
    if excel_limit:
        print(f"excel: filters.limit {excel_limit:,} (raw: ORDER BY rowid LIMIT {excel_limit:,})")
    print(f"table created over the SQL API in {create_s:.1f} s\n")
    print(
        "| format | rows | entrepot MB | export s | rows/s | download s | raw DuckLake s | ratio | "
        "raw in-memory s | raw MB | server RSS base → peak MB |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for fmt in FORMATS:
        e, d, m = (runs[(fmt.name, s)] for s in ("entrepot", "raw DuckLake", "raw in-memory"))
        assert e.rows == d.rows == m.rows, (fmt.name, e.rows, d.rows, m.rows)
        print(
            f"| {fmt.name} | {e.rows:,} | {e.size / 1e6:.1f} | {e.median:.2f} | {e.rows / e.median:,.0f} | "
            f"{statistics.median(e.download):.2f} | {d.median:.2f} | {e.median / d.median:.2f}x | "
            f"{m.median:.2f} | {d.size / 1e6:.1f} | {e.baseline:.0f} → {e.peak:.0f} |"
        )
    print(f"\nserver RSS after start {fresh_rss:.0f} MB, VmHWM after all exports {hwm:.0f} MB")
    if big:
        print(
            f"\n{args.big_rows:,} rows, each export on a freshly started server (table built in {big_s:.0f} s)\n"
        )
        print(
            "| big export | rows | MB | export s | rows/s | download s | RSS fresh MB | RSS after warm-up MB | "
            "RSS peak MB | growth MB | VmHWM MB |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|---|")
        for b in big:
            run = b.run
            print(
                f"| {b.name} | {run.rows:,} | {run.size / 1e6:.0f} | {run.seconds[0]:.1f} | "
                f"{run.rows / run.seconds[0]:,.0f} | {run.download[0]:.1f} | {b.fresh:.0f} | {run.baseline:.0f} | "
                f"{run.peak:.0f} | {run.peak - run.baseline:+.0f} | {b.hwm:.0f} |"
            )
    for line in findings:
        print(line)
    print(f"\n{Api.lost} of {Api.exports} exports completed without a file (download 410) and were run again")
    if env:
        print(f"\nserver settings: {' '.join(f'{k}={v}' for k, v in env.items())}")


if __name__ == "__main__":
    main()
