"""CARTO's Import API against raw DuckDB and ogr2ogr → PostGIS, in the same run.

    python bench/carto_import.py [--rows 1000000] [--gpkg-rows 2000000] [--rounds 3] [--skip-postgis]

Two sources, made by DuckDB before the first round:

* ``points.csv``: ``rows`` rows of ``id, name, value, latitude, longitude`` (a CSV with a
  latitude/longitude pair, which every contender turns into a point geometry);
* ``parcels.gpkg``: ``gpkg-rows`` polygons with three attributes, written through GDAL's
  GeoPackage driver (about 100 bytes a row on disk).

Contenders, interleaved round by round, medians reported:

* **entrepot**: ``POST /user/default/api/v1/imports`` (multipart upload) and polling the import
  until ``complete``; wall time from the first byte sent to the answer that says complete. The
  server cartodbfies: ``cartodb_id``, ``the_geom`` (EPSG:4326) and ``the_geom_webmercator``.
* **DuckDB+carto**: the same with entrepot's output columns (``cartodb_id``, ``the_geom_webmercator``
  through entrepot's own macros): the floor under the Import API.
* **DuckDB**: ``CREATE TABLE AS SELECT`` in a DuckLake (the engine entrepot runs on), the CSV
  through ``read_csv`` + ``ST_Point``, the GeoPackage through ``ST_Read``; no webmercator
  column, no id (the floor under entrepot's work).
* **ogr2ogr → PostGIS**: ``ogr2ogr -f PostgreSQL`` into a throw-away PostgreSQL 15 + PostGIS
  cluster (``PG_USE_COPY``, a spatial index, as ogr2ogr does by default); the CSV with
  ``X_POSSIBLE_NAMES``/``Y_POSSIBLE_NAMES``. Needs ``apt-get install gdal-bin postgis``; skipped
  with a message where missing.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import duckdb
import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server

from entrepot.core.engine import extensions


def connect() -> duckdb.DuckDBPyConnection:
    con = duckdb.connect(config={"autoinstall_known_extensions": False, "autoload_known_extensions": False})
    extensions.load(con, "spatial")
    return con


def make_sources(tmp: Path, rows: int, gpkg_rows: int) -> tuple[Path, Path]:
    csv, gpkg = tmp / "points.csv", tmp / "parcels.gpkg"
    con = connect()
    con.execute(
        f"COPY (SELECT i AS id, 'name_' || i AS name, (i * 7) % 1000 AS value, "
        f"round(-60 + (i * 0.000113) % 120, 6) AS latitude, round(-180 + (i * 0.000347) % 360, 6) AS longitude "
        f"FROM range({rows}) t(i)) TO '{csv}' (FORMAT csv, HEADER)"
    )
    con.execute(
        f"COPY (SELECT i AS id, 'parcel_' || i AS label, (i % 50)::INTEGER AS zone, "
        f"ST_Buffer(ST_Point(-180 + (i * 0.000347) % 360, -60 + (i * 0.000113) % 120), 0.001, 2) AS geom "
        f"FROM range({gpkg_rows}) t(i)) TO '{gpkg}' (FORMAT GDAL, DRIVER 'GPKG', SRS 'EPSG:4326')"
    )
    con.close()
    return csv, gpkg


def timed(fn: Callable[[], object]) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


# -- entrepot ---------------------------------------------------------------------------------------
class Entrepot:
    def __init__(self, tmp: Path):
        self.server = Server(tmp)
        self.base = f"{self.server.url}/user/default/api/v1/imports"
        self.http = httpx.Client(timeout=600)
        self.n = 0

    def load(self, path: Path) -> None:
        self.n += 1
        with path.open("rb") as f:
            r = self.http.post(
                self.base,
                params={"api_key": self.server.token, "table_name": f"{path.stem}_{self.n}"},
                files={"file": (path.name, f)},
            )
        r.raise_for_status()
        item = r.json()["item_queue_id"]
        while True:  # the job's progress is the import's state; poll like the SDK, only faster
            state = self.http.get(f"{self.base}/{item}", params={"api_key": self.server.token}).json()
            if state["state"] == "complete":
                return
            if state["state"] == "failure":
                raise RuntimeError(f"import failed: {state}")
            time.sleep(0.05)

    def close(self) -> None:
        self.http.close()
        self.server.stop()


# -- raw DuckDB -------------------------------------------------------------------------------------
class RawDuckDB:
    def __init__(self, tmp: Path):
        self.con = connect()
        extensions.load(self.con, "ducklake", "sqlite_scanner")
        self.con.execute(f"ATTACH 'ducklake:sqlite:{tmp}/raw.sqlite' AS lake (DATA_PATH '{tmp}/raw-data/')")
        self.con.execute("USE lake")
        self.n = 0

    def load(self, path: Path) -> None:
        self.n += 1
        name = f"{path.stem}_{self.n}"
        if path.suffix == ".csv":
            self.con.execute(
                f"CREATE TABLE {name} AS SELECT *, ST_Point(longitude, latitude) AS the_geom "
                f"FROM read_csv('{path}', header=true)"
            )
        else:
            self.con.execute(f"CREATE TABLE {name} AS SELECT * FROM ST_Read('{path}')")

    def close(self) -> None:
        self.con.close()


class RawDuckDBCartodbfied(RawDuckDB):
    """The same output as entrepot's (``cartodb_id``, ``the_geom``, ``the_geom_webmercator`` with
    entrepot's own macros), in a bare DuckLake: the floor under the Import API's work."""

    def __init__(self, tmp: Path):
        super().__init__(tmp)
        from entrepot.core.sql.geometry import MACROS

        for macro in MACROS:
            self.con.execute(macro)

    def load(self, path: Path) -> None:
        from entrepot.core.sql.table_model import _cartodbfied_select

        self.n += 1
        name = f"{path.stem}_{self.n}"
        if path.suffix == ".csv":
            source = (
                f"SELECT *, ST_Point(longitude, latitude) AS the_geom FROM read_csv('{path}', header=true)"
            )
        else:
            source = f"SELECT * EXCLUDE (geom), geom AS the_geom FROM ST_Read('{path}')"
        names = [str(r[0]) for r in self.con.execute(f"DESCRIBE {source}").fetchall()]
        self.con.execute(f"CREATE TABLE {name} AS {_cartodbfied_select(names, f'({source}) AS source')}")


# -- ogr2ogr → PostGIS ------------------------------------------------------------------------------
class OgrPostGIS:
    def __init__(self, tmp: Path):
        from support.postgres import PostgresCluster

        self.cluster = PostgresCluster(tmp / "pg")
        ok, reason = self.cluster.available()
        if not ok:
            raise RuntimeError(reason)
        self.cluster.start()
        import psycopg

        with psycopg.connect(self.cluster.admin_dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        self.dsn = self.cluster.admin_dsn
        self.n = 0

    def load(self, path: Path) -> None:
        self.n += 1
        name = f"{path.stem}_{self.n}"
        cmd = [
            "ogr2ogr",
            "-f",
            "PostgreSQL",
            f"PG:{self.dsn}",
            str(path),
            "-nln",
            name,
            "-lco",
            "GEOMETRY_NAME=the_geom",
        ]
        if path.suffix == ".csv":
            cmd += [
                "-oo",
                "X_POSSIBLE_NAMES=longitude",
                "-oo",
                "Y_POSSIBLE_NAMES=latitude",
                "-a_srs",
                "EPSG:4326",
            ]
        subprocess.run(cmd, check=True, capture_output=True)

    def close(self) -> None:
        self.cluster.stop()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--gpkg-rows", type=int, default=2_000_000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--skip-postgis", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-import-") as name:
        tmp = Path(name)
        csv, gpkg = make_sources(tmp, args.rows, args.gpkg_rows)
        print(f"sources: {csv.name} {csv.stat().st_size / 1e6:.0f} MB ({args.rows:,} rows), "
              f"{gpkg.name} {gpkg.stat().st_size / 1e6:.0f} MB ({args.gpkg_rows:,} polygons)")  # fmt: skip
        contenders: dict[str, object] = {}
        makers = (
            ("entrepot", Entrepot),
            ("duckdb", RawDuckDB),
            ("duckdb+carto", RawDuckDBCartodbfied),
            ("ogr2ogr→postgis", OgrPostGIS),
        )
        for label, make in makers:
            if label.startswith("ogr") and (args.skip_postgis or shutil.which("ogr2ogr") is None):
                print(
                    "skipping ogr2ogr→postgis: --skip-postgis or no ogr2ogr (apt-get install gdal-bin postgis)"
                )
                continue
            workdir = tmp / label.split("→")[0]
            workdir.mkdir()
            try:
                contenders[label] = make(workdir)
            except Exception as exc:  # a missing peer is reported, not fatal
                print(f"skipping {label}: {exc}")
        times: dict[tuple[str, str], list[float]] = {}
        for round_no in range(args.rounds):
            for source in (csv, gpkg):
                for label, contender in contenders.items():
                    seconds = timed(lambda c=contender, s=source: c.load(s))  # type: ignore[attr-defined]
                    times.setdefault((source.name, label), []).append(seconds)
                    print(f"round {round_no + 1}: {source.name:<13} {label:<16} {seconds:7.2f} s", flush=True)
        for contender in contenders.values():
            contender.close()  # type: ignore[attr-defined]
    print()
    print("| source | contender | median s | rows/s | vs duckdb | vs duckdb+carto | vs ogr2ogr→postgis |")
    print("|---|---|---|---|---|---|---|")
    for source, rows in ((csv.name, args.rows), (gpkg.name, args.gpkg_rows)):
        duck = statistics.median(times.get((source, "duckdb"), [float("nan")]))
        carto = statistics.median(times.get((source, "duckdb+carto"), [float("nan")]))
        ogr = statistics.median(times.get((source, "ogr2ogr→postgis"), [float("nan")]))
        for label in contenders:
            med = statistics.median(times[(source, label)])
            ratios = " | ".join(f"{floor / med:.2f}x" for floor in (duck, carto, ogr))
            print(f"| {source} | {label} | {med:.2f} | {rows / med:,.0f} | {ratios} |")


if __name__ == "__main__":
    main()
