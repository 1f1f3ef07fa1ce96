"""CARTO's Maps API tiles (MVT and PNG) against PostGIS ``ST_AsMVT`` and Mapnik on PostGIS, same run.

    python bench/maps.py [--points 1000000] [--polygons 100000] [--tiles-per-zoom 8] [--rounds 3]
                         [--clients 8] [--skip-postgis]

Data, made by the script (numpy, seeded) and written by DuckDB as two GeoPackages:

* ``points``: ``points`` points over Europe, 70 % in 60 gaussian clusters of varied spread
  (cities), 30 % uniform; attributes ``cartodb_id``, ``value`` (integer), ``category`` (text);
* ``polygons``: ``polygons`` small polygons (points buffered by 100 m to 2 km, 8 segments a
  quarter circle), from the same mixture; attributes ``cartodb_id``, ``zone`` (integer).

Both go to entrepot through the Import API (cartodbfied: ``the_geom``, ``the_geom_webmercator``)
and to a throw-away PostgreSQL 15 + PostGIS cluster through ``ogr2ogr`` (same ``cartodb_id``),
where ``the_geom_webmercator`` is ``ST_Transform(the_geom, 3857)`` with a GIST index, then
``ANALYZE`` (what a PostGIS user serving tiles does).

Tiles: for each zoom 0-14, ``tiles-per-zoom`` tiles that hold data (the tile under a random point
of either table; fewer at zooms 0-1, which have fewer tiles), seeded, shuffled, the same for every
contender. Each tile is both layers (points, then polygons). ``clients`` threads share the list.

Contenders, interleaved (odd rounds entrepot first, even rounds PostGIS first), medians over rounds:

* **entrepot MVT cold**: ``GET …/<layergroupid>/all/z/x/y.mvt`` over HTTP (``httpx``, a client
  per thread) on a layergroup made for the round (its SQL carries a round comment, so it is a new
  layergroup and every tile a cache miss);
* **entrepot MVT warm**: the same tiles again on the same layergroup (tile cache hits), at
  ``clients`` threads and at one client;
* **PostGIS MVT**: the query a PostGIS tile server runs (``ST_AsMVT`` of ``ST_AsMVTGeom`` rows
  selected with ``&& ST_TileEnvelope(z, x, y, margin => 64/4096)``, the two layers'
  tiles concatenated), a psycopg connection per thread;
* **entrepot PNG cold**: ``…/all/z/x/y.png`` on a fresh layergroup;
* **Mapnik PNG on PostGIS**: the same Mapnik style (entrepot's CartoCSS compiler output) with
  Mapnik's ``postgis`` datasource, one ``mapnik.Map`` per thread reused for every tile
  (``zoom_to_box``, ``render``, ``to_string('png32')``), buffer 64 px as entrepot's.
  ``mapnik.render`` releases the GIL (the script prints its 1- vs 2-thread speed-up).

Needs ``apt-get install postgresql postgis gdal-bin`` for the PostGIS rows; skipped with a
message where missing.
"""

from __future__ import annotations

import argparse
import math
import queue
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
sys.path.insert(0, str(Path(__file__).resolve().parent))
from _server import Server

from entrepot.core.engine import extensions
from entrepot.core.maps.mvt import tile_bounds

Tile = tuple[int, int, int]
HALF_WORLD = 20037508.342789244
POINTS_CSS = (
    "#layer { marker-fill: #E3242B; marker-width: 4; marker-line-width: 0; marker-allow-overlap: true; }"
)
POLYGONS_CSS = "#layer { polygon-fill: #3388FF; polygon-opacity: 0.6; line-color: #003366; line-width: 0.5; }"
POINTS_SQL = "SELECT cartodb_id, the_geom_webmercator, value, category FROM points"
POLYGONS_SQL = "SELECT cartodb_id, the_geom_webmercator, zone FROM polygons"


# -- data ---------------------------------------------------------------------------------------------
def lonlat(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points over Europe: 70 % in 60 clusters of varied spread, 30 % uniform."""
    centres = np.column_stack([rng.uniform(-10, 30, 60), rng.uniform(36, 60, 60)])
    spread = rng.uniform(0.05, 1.0, 60)
    weight = rng.pareto(1.2, 60) + 0.1
    clustered = int(n * 0.7)
    which = rng.choice(60, clustered, p=weight / weight.sum())
    cx = centres[which, 0] + rng.normal(0, 1, clustered) * spread[which]
    cy = centres[which, 1] + rng.normal(0, 1, clustered) * spread[which] * 0.7
    ux, uy = rng.uniform(-11, 32, n - clustered), rng.uniform(35, 62, n - clustered)
    lon, lat = np.concatenate([cx, ux]), np.concatenate([cy, uy])
    order = rng.permutation(n)
    return np.clip(lon[order], -179.9, 179.9), np.clip(lat[order], -84, 84)


def make_sources(tmp: Path, n_points: int, n_polygons: int, seed: int) -> dict[str, object]:
    import pyarrow as pa

    rng = np.random.default_rng(seed)
    plon, plat = lonlat(rng, n_points)
    glon, glat = lonlat(rng, n_polygons)
    points = pa.table({
        "cartodb_id": np.arange(1, n_points + 1, dtype=np.int64), "lon": plon, "lat": plat,
        "value": rng.integers(0, 1000, n_points, dtype=np.int32),
        "category": np.array(["a", "b", "c", "d", "e"])[rng.integers(0, 5, n_points)],
    })  # fmt: skip
    polygons = pa.table({
        "cartodb_id": np.arange(1, n_polygons + 1, dtype=np.int64), "lon": glon, "lat": glat,
        "radius": rng.uniform(0.001, 0.02, n_polygons), "zone": rng.integers(0, 50, n_polygons, dtype=np.int32),
    })  # fmt: skip
    con = extensions.connect()
    extensions.load(con, "spatial")
    con.register("points_src", points)
    con.register("polygons_src", polygons)
    con.execute(
        f"COPY (SELECT cartodb_id, value, category, ST_Point(lon, lat) AS geom FROM points_src) "
        f"TO '{tmp / 'points.gpkg'}' (FORMAT GDAL, DRIVER 'GPKG', SRS 'EPSG:4326')"
    )
    con.execute(
        f"COPY (SELECT cartodb_id, zone, ST_Buffer(ST_Point(lon, lat), radius, 8) AS geom FROM polygons_src) "
        f"TO '{tmp / 'polygons.gpkg'}' (FORMAT GDAL, DRIVER 'GPKG', SRS 'EPSG:4326')"
    )
    con.close()
    return {
        "points": tmp / "points.gpkg",
        "polygons": tmp / "polygons.gpkg",
        "lonlat": (plon, plat, glon, glat),
    }


def tile_of(lon: float, lat: float, z: int) -> Tile:
    n = 1 << z
    x = int((lon + 180) / 360 * n)
    lat_r = math.radians(lat)
    y = int((1 - math.asinh(math.tan(lat_r)) / math.pi) / 2 * n)
    return z, min(max(x, 0), n - 1), min(max(y, 0), n - 1)


def pick_tiles(coords: tuple[np.ndarray, ...], per_zoom: int, seed: int) -> list[Tile]:
    """``per_zoom`` distinct tiles under random data points at each zoom 0-14, shuffled."""
    rnd = random.Random(seed)
    plon, plat, glon, glat = coords
    tiles: list[Tile] = []
    for z in range(15):
        chosen: set[Tile] = set()
        for _ in range(per_zoom * 50):  # bounded: low zooms have fewer distinct tiles
            if len(chosen) >= min(per_zoom, 4**z):
                break
            lon, lat = (plon, plat) if rnd.random() < 0.7 else (glon, glat)
            i = rnd.randrange(len(lon))
            chosen.add(tile_of(float(lon[i]), float(lat[i]), z))
        tiles += sorted(chosen)
    rnd.shuffle(tiles)
    return tiles


# -- measuring ------------------------------------------------------------------------------------------
class Pass:
    """One pass over the tiles: per-tile latency (s), wall time, bytes, empty tiles, failures."""

    def __init__(self, latencies: list[float], wall: float, sizes: list[int], failures: list[str]):
        self.latencies, self.wall, self.sizes, self.failures = latencies, wall, sizes, failures

    @property
    def p50(self) -> float:
        return percentile(self.latencies, 50) * 1000

    @property
    def p99(self) -> float:
        return percentile(self.latencies, 99) * 1000

    @property
    def rate(self) -> float:
        return len(self.latencies) / self.wall

    @property
    def empty(self) -> int:
        return sum(1 for s in self.sizes if s == 0)


def percentile(values: Sequence[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q)) if values else float("nan")


def run_pass(tiles: Sequence[Tile], clients: int, fetch: Callable[[Tile], int]) -> Pass:
    """Fetch every tile from ``clients`` threads; ``fetch`` returns the tile's size (0: empty)."""
    latencies: list[float] = []
    sizes: list[int] = []
    failures: list[str] = []
    lock = threading.Lock()

    def one(t: Tile) -> None:
        t0 = time.perf_counter()
        try:
            size = fetch(t)
        except Exception as exc:  # a failed tile is counted and reported, not fatal
            with lock:
                failures.append(f"{t}: {str(exc)[:200]}")
            return
        dt = time.perf_counter() - t0
        with lock:
            latencies.append(dt)
            sizes.append(size)

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        list(pool.map(one, tiles))
    return Pass(latencies, time.perf_counter() - t0, sizes, failures)


# -- entrepot ---------------------------------------------------------------------------------------------
class Entrepot:
    def __init__(self, tmp: Path, sources: dict[str, object]):
        self.server = Server(tmp)
        self.base = f"{self.server.url}/user/default/api/v1"
        self.http = httpx.Client(timeout=600)
        for name in ("points", "polygons"):
            t0 = time.perf_counter()
            self._import(sources[name], name)  # type: ignore[arg-type]
            print(f"entrepot: imported {name} in {time.perf_counter() - t0:.1f} s", flush=True)
        self.local = threading.local()
        self.n = 0

    def _import(self, path: Path, table: str) -> None:
        with path.open("rb") as f:
            r = self.http.post(
                f"{self.base}/imports",
                params={"api_key": self.server.token, "table_name": table},
                files={"file": (path.name, f)},
            )
        r.raise_for_status()
        item = r.json()["item_queue_id"]
        for _ in range(12000):  # at most ~10 minutes
            state = self.http.get(f"{self.base}/imports/{item}", params={"api_key": self.server.token}).json()
            if state["state"] == "complete":
                if state.get("table_name") not in (None, table):
                    raise RuntimeError(f"imported as {state['table_name']}, not {table}")
                return
            if state["state"] == "failure":
                raise RuntimeError(f"import failed: {state}")
            time.sleep(0.05)
        raise RuntimeError("import did not finish")

    def layergroup(self) -> str:
        """A new layergroup (its SQL carries a fresh comment): all its tiles are cache misses."""
        self.n += 1
        layers = [
            {"type": "cartodb", "options": {"sql": f"{sql} /* bench {self.n} */", "cartocss": css,
                                            "cartocss_version": "2.1.1"}}
            for sql, css in ((POINTS_SQL, POINTS_CSS), (POLYGONS_SQL, POLYGONS_CSS))
        ]  # fmt: skip
        r = self.http.post(
            f"{self.base}/map",
            params={"api_key": self.server.token},
            json={"version": "1.0.1", "layers": layers},
        )
        r.raise_for_status()
        return r.json()["layergroupid"]

    def fetcher(self, group: str, ext: str) -> Callable[[Tile], int]:
        def fetch(t: Tile) -> int:
            client = getattr(self.local, "http", None)
            if client is None:
                client = self.local.http = httpx.Client(timeout=600)
            z, x, y = t
            r = client.get(f"{self.base}/map/{group}/all/{z}/{x}/{y}.{ext}")
            if r.status_code == 204:
                return 0
            if r.status_code != 200:
                raise RuntimeError(f"HTTP {r.status_code}: {r.text[:200]}")
            return len(r.content)

        return fetch

    def close(self) -> None:
        self.http.close()
        self.server.stop()


# -- PostGIS -------------------------------------------------------------------------------------------------
def mvt_sql() -> str:
    def layer(name: str, table: str, attrs: str) -> str:
        return (
            f"(SELECT ST_AsMVT(q, '{name}', 4096, 'geom', 'fid') FROM (SELECT "
            f"ST_AsMVTGeom(the_geom_webmercator, ST_TileEnvelope(%(z)s, %(x)s, %(y)s), 4096, 64, true) AS geom, "
            f"cartodb_id AS fid, {attrs} FROM {table} WHERE the_geom_webmercator && "
            f"ST_TileEnvelope(%(z)s, %(x)s, %(y)s, margin => 64.0 / 4096)) q WHERE geom IS NOT NULL)"
        )

    return (
        f"SELECT {layer('layer0', 'points', 'cartodb_id, value, category')} || "
        f"{layer('layer1', 'polygons', 'cartodb_id, zone')}"
    )


class PostGIS:
    def __init__(self, tmp: Path, sources: dict[str, object], clients: int):
        from support.postgres import PostgresCluster

        if shutil.which("ogr2ogr") is None:
            raise RuntimeError("no ogr2ogr (apt-get install gdal-bin)")
        self.cluster = PostgresCluster(tmp / "pg")
        ok, reason = self.cluster.available()
        if not ok:
            raise RuntimeError(reason)
        self.cluster.start()
        import psycopg

        self.psycopg = psycopg
        with psycopg.connect(self.cluster.admin_dsn, autocommit=True) as conn:
            conn.execute("CREATE EXTENSION postgis")
        for name in ("points", "polygons"):
            t0 = time.perf_counter()
            subprocess.run(
                ["ogr2ogr", "-f", "PostgreSQL", f"PG:{self.cluster.admin_dsn}", str(sources[name]), "-nln", name,
                 "-lco", "GEOMETRY_NAME=the_geom", "-lco", "SPATIAL_INDEX=NONE"],
                check=True, capture_output=True,
            )  # fmt: skip
            with psycopg.connect(self.cluster.admin_dsn, autocommit=True) as conn:
                conn.execute(f"ALTER TABLE {name} ADD COLUMN the_geom_webmercator geometry(Geometry, 3857)")
                conn.execute(f"UPDATE {name} SET the_geom_webmercator = ST_Transform(the_geom, 3857)")
                conn.execute(f"CREATE INDEX ON {name} USING gist (the_geom_webmercator)")
                conn.execute(f"VACUUM ANALYZE {name}")
            print(f"postgis: loaded {name} in {time.perf_counter() - t0:.1f} s", flush=True)
        self.sql = mvt_sql()
        self.clients = clients
        self.conns: queue.Queue = queue.Queue()
        for _ in range(clients):
            self.conns.put(psycopg.connect(self.cluster.admin_dsn, autocommit=True))
        self.local = threading.local()

    def fetch_mvt(self, t: Tile) -> int:
        conn = self.conns.get()
        try:
            z, x, y = t
            body = conn.execute(self.sql, {"z": z, "x": x, "y": y}).fetchone()[0]
        finally:
            self.conns.put(conn)
        return len(body or b"")

    def _mapnik_map(self):  # a Map per thread: Mapnik maps are not thread-safe
        import mapnik

        from entrepot.core.maps import cartocss, raster

        c = self.cluster
        layers, xml_styles = [], []
        for i, (name, sql, css) in enumerate(
            (("layer0", POINTS_SQL, POINTS_CSS), ("layer1", POLYGONS_SQL, POLYGONS_CSS))
        ):
            style = cartocss.compile(css, name, prefix=f"{i}:")
            xml_styles += style.xml_styles
            params = {
                "type": "postgis", "host": "127.0.0.1", "port": str(c.port), "dbname": "postgres",
                "user": "entrepot_test", "table": f"({sql}) AS t", "geometry_field": "the_geom_webmercator",
                "srid": "3857", "extent": f"{-HALF_WORLD},{-HALF_WORLD},{HALF_WORLD},{HALF_WORLD}",
                "persist_connection": "true", "max_size": str(4 * self.clients),
            }  # fmt: skip
            ds = "".join(f'<Parameter name="{k}"><![CDATA[{v}]]></Parameter>' for k, v in params.items())
            names = "".join(f"<StyleName>{n}</StyleName>" for n in style.style_names)
            layers.append(
                f'<Layer name="{name}" srs="{raster.WEB_MERCATOR}">{names}<Datasource>{ds}</Datasource></Layer>'
            )
        m = mapnik.Map(256, 256)
        xml = f'<Map srs="{raster.WEB_MERCATOR}">{"".join(xml_styles)}{"".join(layers)}</Map>'
        mapnik.load_map_from_string(m, xml)
        m.buffer_size = raster.BUFFER
        return m

    def fetch_png(self, t: Tile) -> int:
        import mapnik

        m = getattr(self.local, "map", None)
        if m is None:
            m = self.local.map = self._mapnik_map()
        m.zoom_to_box(mapnik.Box2d(*tile_bounds(*t)))
        image = mapnik.Image(256, 256)
        mapnik.render(m, image)
        return len(image.to_string("png32"))

    def close(self) -> None:
        while not self.conns.empty():
            self.conns.get().close()
        self.cluster.stop()


# -- main ------------------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--polygons", type=int, default=100_000)
    parser.add_argument("--tiles-per-zoom", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--skip-postgis", action="store_true")
    args = parser.parse_args()
    started = time.perf_counter()
    results: dict[str, list[Pass]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-maps-") as name:
        tmp = Path(name)
        sources = make_sources(tmp, args.points, args.polygons, args.seed)
        tiles = pick_tiles(sources["lonlat"], args.tiles_per_zoom, args.seed)  # type: ignore[arg-type]
        print(f"data: {args.points:,} points, {args.polygons:,} polygons; {len(tiles)} tiles over z0-z14, "
              f"{args.clients} clients", flush=True)  # fmt: skip
        (tmp / "entrepot").mkdir()
        entrepot = Entrepot(tmp / "entrepot", sources)
        postgis: PostGIS | None = None
        if args.skip_postgis:
            print("skipping PostGIS: --skip-postgis")
        else:
            (tmp / "postgis").mkdir()
            try:
                postgis = PostGIS(tmp / "postgis", sources, args.clients)
            except Exception as exc:  # a missing peer is reported, not fatal
                print(f"skipping PostGIS: {exc}")
        try:
            if postgis is not None:  # does mapnik.render release the GIL? same tiles, 1 vs 2 threads
                sample = [t for t in tiles if t[0] >= 4]
                postgis.fetch_png(sample[0])
                one = run_pass(sample, 1, postgis.fetch_png).wall
                two = run_pass(sample, 2, postgis.fetch_png).wall
                print(f"mapnik on PostGIS, {len(sample)} PNG tiles: 1 thread {one:.2f} s, 2 threads {two:.2f} s "
                      f"({one / two:.2f}x: the GIL is {'released' if one / two > 1.4 else 'held?'})")  # fmt: skip

            def record(label: str, p: Pass, round_no: int) -> None:
                results.setdefault(label, []).append(p)
                bad = f", {len(p.failures)} FAILED: {p.failures[:2]}" if p.failures else ""
                print(f"round {round_no}: {label:<28} p50 {p.p50:8.1f} ms  p99 {p.p99:8.1f} ms  "
                      f"{p.rate:7.1f} tiles/s  {sum(p.sizes) / 1e6:6.1f} MB  {p.empty} empty{bad}",
                      flush=True)  # fmt: skip

            def run_entrepot(r: int) -> None:
                group = entrepot.layergroup()
                record("entrepot MVT cold", run_pass(tiles, args.clients, entrepot.fetcher(group, "mvt")), r)
                record("entrepot MVT warm", run_pass(tiles, args.clients, entrepot.fetcher(group, "mvt")), r)
                record("entrepot MVT warm, 1 client", run_pass(tiles, 1, entrepot.fetcher(group, "mvt")), r)
                group = entrepot.layergroup()
                record("entrepot PNG cold", run_pass(tiles, args.clients, entrepot.fetcher(group, "png")), r)

            def run_postgis(r: int) -> None:
                if postgis is not None:
                    record("PostGIS ST_AsMVT", run_pass(tiles, args.clients, postgis.fetch_mvt), r)
                    record("Mapnik PNG on PostGIS", run_pass(tiles, args.clients, postgis.fetch_png), r)

            for r in range(1, args.rounds + 1):
                for step in (run_entrepot, run_postgis) if r % 2 else (run_postgis, run_entrepot):
                    step(r)
        finally:
            entrepot.close()
            if postgis is not None:
                postgis.close()
            log = next(iter((tmp / "entrepot").glob("serve-*.log")), None)
            errors = [
                line
                for line in (log.read_text().splitlines() if log else [])
                if "Error" in line or " 500" in line
            ]
            print(f"server log: {len(errors)} error lines" + "".join(f"\n  {e[:300]}" for e in errors[:10]))
    print(f"\ntotal {time.perf_counter() - started:.0f} s\n")
    print(
        f"| {len(tiles)} tiles z0-z14, {args.clients} clients | p50 ms | p99 ms | tiles/s | vs PostGIS tiles/s |"
    )
    print("|---|---|---|---|---|")
    floors = {"MVT": "PostGIS ST_AsMVT", "PNG": "Mapnik PNG on PostGIS"}
    for label, passes in results.items():
        p50 = statistics.median(p.p50 for p in passes)
        p99 = statistics.median(p.p99 for p in passes)
        rate = statistics.median(p.rate for p in passes)
        floor = floors["PNG" if "PNG" in label else "MVT"]
        ratio = ""
        if floor in results and label != floor:
            ratio = f"{rate / statistics.median(p.rate for p in results[floor]):.2f}x"
        print(f"| {label} | {p50:.1f} | {p99:.1f} | {rate:.1f} | {ratio} |")


if __name__ == "__main__":
    main()
