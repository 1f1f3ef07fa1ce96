"""CARTO's Import API and datasets through the official ``carto`` SDK (1.11.3, unmodified).

``DatasetManager.create`` imports CSV (lat/lon), TSV, GeoJSON, GeoPackage, Parquet and a zipped
Shapefile (fixtures written by DuckDB here), and a URL served by a tiny HTTP server on 127.0.0.1
(allowed by the server's settings; a server with the defaults refuses it). Datasets are listed,
read, made public (anonymous SQL then reads them) and deleted. Hostile files (a zip bomb, a zip
path traversal, 10,000 columns, a broken encoding, an empty file, an unknown extension) end in
``failure`` with CARTO's error code, and leave no table behind.
"""

from __future__ import annotations

import gzip
import http.server
import io
import threading
import time
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from entrepot.core.engine import extensions
from support.server import RunningServer, start_server

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from carto.auth import APIKeyAuthClient
    from carto.datasets import DatasetManager
    from carto.exceptions import CartoException
    from carto.file_import import FileImportJobManager
    from carto.sql import SQLClient

pytestmark = pytest.mark.filterwarnings("ignore")

POINTS = "SELECT * FROM (VALUES (1, 'Paris', 2.35, 48.85), (2, 'Lyon', 4.83, 45.76)) t(id, city, lon, lat)"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("server"), url_import_allowed_hosts=["127.0.0.1"])
    yield running
    running.stop()


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Fixture files, written by DuckDB (spatial's GDAL writer for the GIS formats)."""
    d = tmp_path_factory.mktemp("files")
    con = extensions.connect()
    extensions.load(con, "spatial")
    geo = f"SELECT id, city, ST_Point(lon, lat) AS geom FROM ({POINTS})"
    con.execute(f"COPY ({geo}) TO '{d}/places.geojson' (FORMAT GDAL, DRIVER 'GeoJSON')")
    con.execute(f"COPY ({geo}) TO '{d}/towns.gpkg' (FORMAT GDAL, DRIVER 'GPKG', SRS 'EPSG:4326')")
    con.execute(f"COPY ({geo}) TO '{d}/stations.parquet' (FORMAT parquet)")
    shp = d / "shp"
    shp.mkdir()
    con.execute(f"COPY ({geo}) TO '{shp}/rivers.shp' (FORMAT GDAL, DRIVER 'ESRI Shapefile', SRS 'EPSG:4326')")
    with zipfile.ZipFile(d / "rivers.zip", "w") as z:
        for part in shp.iterdir():
            z.write(part, part.name)
    # a projected CRS (web mercator) is reprojected to EPSG:4326
    merc = (
        f"SELECT id, city, ST_Transform(ST_Point(lat, lon), 'EPSG:4326', 'EPSG:3857') AS geom FROM ({POINTS})"
    )
    con.execute(f"COPY ({merc}) TO '{d}/mercator.gpkg' (FORMAT GDAL, DRIVER 'GPKG', SRS 'EPSG:3857')")
    con.execute(f"COPY ({geo}) TO '{d}/lines.fgb' (FORMAT GDAL, DRIVER 'FlatGeobuf', SRS 'EPSG:4326')")
    con.execute(f"COPY ({geo}) TO '{d}/pins.kml' (FORMAT GDAL, DRIVER 'KML')")
    extensions.load(con, "excel")
    con.execute(f"COPY ({POINTS}) TO '{d}/sheet.xlsx' (FORMAT xlsx, HEADER true)")
    con.close()
    with gzip.open(d / "zipped.csv.gz", "wb") as gz:
        gz.write(b"id,city,lat,lon\n1,Paris,48.85,2.35\n2,Lyon,45.76,4.83\n")
    (d / "cities.csv").write_text("id,city,latitude,longitude\n1,Paris,48.85,2.35\n2,Lyon,45.76,4.83\n")
    (d / "shops.tsv").write_text("id\tname\tlat\tlng\n1\tCafé\t48.85\t2.35\n2\tBar\t45.76\t4.83\n")
    (d / "wkt.csv").write_text(
        'id,the_geom\n1,"POINT(2.35 48.85)"\n2,"{""type"": ""point"", ""coordinates"": [4.83, 45.76]}"\n'
    )
    return d


def _auth(server: RunningServer, token: str | None = None) -> APIKeyAuthClient:
    return APIKeyAuthClient(api_key=token or server.token, base_url=f"{server.url}/user/default/")


def _sql(server: RunningServer, q: str, token: str | None = None) -> list[dict[str, Any]]:
    return SQLClient(_auth(server, token)).send(q)["rows"]  # type: ignore[no-any-return]


def _anon(server: RunningServer, q: str) -> requests.Response:
    return requests.get(f"{server.url}/user/default/api/v2/sql", params={"q": q})


def _tables(server: RunningServer) -> set[str]:
    rows = _sql(server, "SELECT table_name FROM information_schema.tables WHERE table_schema = 'in.c-public'")
    return {r["table_name"] for r in rows}


def _post_file(server: RunningServer, name: str, data: bytes, token: str | None = None) -> requests.Response:
    return requests.post(
        f"{server.url}/user/default/api/v1/imports/",
        params={"api_key": token or server.token},
        files={"file": (name, data)},
    )


def _wait(server: RunningServer, import_id: str, timeout: float = 60) -> dict[str, Any]:
    """Poll the import until it finishes (the show request itself waits up to job_response_wait)."""
    deadline = time.monotonic() + timeout
    while True:
        r = requests.get(
            f"{server.url}/user/default/api/v1/imports/{import_id}", params={"api_key": server.token}
        )
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        if body["state"] in ("complete", "failure") or time.monotonic() > deadline:
            return body


# -- formats through the SDK ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "table"),
    [
        ("cities.csv", "cities"),
        ("shops.tsv", "shops"),
        ("wkt.csv", "wkt"),
        ("places.geojson", "places"),
        ("towns.gpkg", "towns"),
        ("stations.parquet", "stations"),
        ("rivers.zip", "rivers"),
        ("mercator.gpkg", "mercator"),
        ("lines.fgb", "lines"),
        ("pins.kml", "pins"),
        ("sheet.xlsx", "sheet"),
        ("zipped.csv.gz", "zipped"),
    ],
)
def test_dataset_manager_imports_each_format(
    server: RunningServer, files: Path, name: str, table: str
) -> None:
    dataset = DatasetManager(_auth(server)).create(str(files / name))
    assert dataset.name == table
    assert dataset.privacy == "PRIVATE"
    assert dataset.dependent_visualizations_count == 0
    rows = _sql(
        server,
        f"SELECT cartodb_id, round(ST_X(the_geom), 2) AS x, round(ST_Y(the_geom), 2) AS y, "
        f"the_geom_webmercator IS NOT NULL AS merc FROM {table} ORDER BY x",
    )
    # (a FlatGeobuf's spatial index may reorder features: cartodb_id follows the file's order)
    assert sorted(r["cartodb_id"] for r in rows) == [1, 2]
    assert [(r["x"], r["y"], r["merc"]) for r in rows] == [(2.35, 48.85, True), (4.83, 45.76, True)]


def test_names_collide_into_suffixes_and_table_name_is_honoured(server: RunningServer, files: Path) -> None:
    manager = DatasetManager(_auth(server))
    first = manager.create(str(files / "cities.csv"), table_name="Collide Me")
    second = manager.create(str(files / "cities.csv"), table_name="Collide Me")
    third = manager.create(str(files / "cities.csv"), table_name="Collide Me")
    assert [first.name, second.name, third.name] == ["collide_me", "collide_me_1", "collide_me_2"]


def test_import_json_has_carto_fields(server: RunningServer, files: Path) -> None:
    r = _post_file(server, "cities.csv", (files / "cities.csv").read_bytes())
    assert r.status_code == 200 and r.json()["success"] is True
    body = _wait(server, r.json()["item_queue_id"])
    assert body["state"] == "complete" and body["success"] is True
    assert body["table_name"].startswith("cities") and body["table_id"] == body["visualization_id"]
    assert body["error_code"] is None and body["tables_created_count"] == 1
    assert body["display_name"] == "cities.csv" and body["data_type"] == "file"
    table = requests.get(
        f"{server.url}/user/default/api/v1/tables/{body['table_id']}", params={"api_key": server.token}
    ).json()
    assert table["table_visualization"]["id"] == body["table_id"] and table["name"] == body["table_name"]
    listed = requests.get(
        f"{server.url}/user/default/api/v1/imports/", params={"api_key": server.token}
    ).json()
    assert body["item_queue_id"] in listed["imports"]
    assert FileImportJobManager(_auth(server)).all() == []  # the SDK 1.11.3 never builds its resources


# -- URL imports ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def http_files(files: Path) -> Iterator[str]:
    handler = lambda *a, **k: http.server.SimpleHTTPRequestHandler(*a, directory=str(files), **k)  # noqa: E731
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.RequestHandlerClass.log_message = lambda *a: None  # type: ignore[method-assign]
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def test_url_import_allowed_by_settings(server: RunningServer, http_files: str) -> None:
    dataset = DatasetManager(_auth(server)).create(f"{http_files}/towns.gpkg", table_name="from_url")
    assert dataset.name == "from_url"
    assert _sql(server, "SELECT count(*) AS n FROM from_url") == [{"n": 2}]
    # the URL and the options may also come in a JSON or a form body
    imports = f"{server.url}/user/default/api/v1/imports/"
    by_json = requests.post(
        imports, json={"url": f"{http_files}/cities.csv", "table_name": "json_url", "api_key": server.token}
    )
    by_form = requests.post(
        imports,
        data={"url": f"{http_files}/places.geojson", "table_name": "form_url", "api_key": server.token},
    )
    for answer, table in ((by_json, "json_url"), (by_form, "form_url")):
        body = _wait(server, answer.json()["item_queue_id"])
        assert (body["state"], body["table_name"], body["data_type"]) == ("complete", table, "url")
    missing = _wait(
        server,
        requests.post(imports, params={"api_key": server.token, "url": f"{http_files}/no.csv"}).json()[
            "item_queue_id"
        ],
    )
    assert (missing["state"], missing["error_code"]) == ("failure", 1100)


def test_invalid_options_are_400_in_the_import_envelope(server: RunningServer, files: Path) -> None:
    r = requests.post(
        f"{server.url}/user/default/api/v1/imports/",
        params={"api_key": server.token, "privacy": "everyone"},
        files={"file": ("cities.csv", (files / "cities.csv").read_bytes())},
    )
    assert r.status_code == 400 and "privacy" in r.json()["errors"]["imports"]
    r = requests.post(f"{server.url}/user/default/api/v1/imports/", files={"file": ("a.csv", b"a\n1\n")})
    assert r.status_code == 401 and "imports" in r.json()["errors"]


def test_url_import_of_a_private_address_is_refused_by_default(tmp_path: Path, http_files: str) -> None:
    strict = start_server(tmp_path / "strict")
    try:
        with pytest.raises(CartoException, match="failed import"):
            DatasetManager(_auth(strict)).create(f"{http_files}/cities.csv")
        r = requests.post(
            f"{strict.url}/user/default/api/v1/imports/",
            params={"api_key": strict.token, "url": f"{http_files}/x.csv"},
        )
        body = _wait(strict, r.json()["item_queue_id"])
        assert body["state"] == "failure" and body["success"] is False and body["error_code"] == 1102
        assert (
            "private" in body["get_error_text"]["what_about"]
            or "loopback" in body["get_error_text"]["what_about"]
        )
    finally:
        strict.stop()


def test_url_import_redirected_to_a_private_address_is_refused_before_connecting(
    server: RunningServer,
) -> None:
    class Redirect(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # an allowed host that sends the download to the cloud's metadata address
            self.send_response(302)
            self.send_header("Location", "http://169.254.169.254/latest/meta-data/iam/x.csv")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Redirect)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        before = _sql(server, "SELECT count(*) AS n FROM information_schema.tables")
        r = requests.post(
            f"{server.url}/user/default/api/v1/imports/",
            params={"api_key": server.token, "url": f"http://127.0.0.1:{httpd.server_address[1]}/data.csv"},
        )
        body = _wait(server, r.json()["item_queue_id"])
        assert (body["state"], body["error_code"]) == ("failure", 1102)
        assert "169.254.169.254" in body["get_error_text"]["what_about"]
        assert (
            _sql(server, "SELECT count(*) AS n FROM information_schema.tables") == before
        )  # nothing created
    finally:
        httpd.shutdown()


# -- datasets -----------------------------------------------------------------------------------------


def test_dataset_list_get_privacy_and_delete(server: RunningServer, files: Path) -> None:
    manager = DatasetManager(_auth(server))
    dataset = manager.create(str(files / "cities.csv"), table_name="lifecycle")
    assert dataset.name == "lifecycle"
    listed = manager.all()
    assert "lifecycle" in [d.name for d in listed]
    total = requests.get(
        f"{server.url}/user/default/api/v1/viz/", params={"api_key": server.token, "type": "table"}
    ).json()["total_entries"]
    assert total == len(listed)
    assert manager.get("lifecycle").id == dataset.id  # by name
    assert manager.get(dataset.id).name == "lifecycle"  # by id

    assert _anon(server, "SELECT count(*) AS n FROM lifecycle").status_code == 403
    dataset.privacy = "PUBLIC"
    dataset.description = "two cities"
    dataset.tags = ["france"]
    dataset.save()
    again = manager.get(dataset.id)
    assert (again.privacy, again.description, again.tags) == ("PUBLIC", "two cities", ["france"])
    assert _anon(server, "SELECT count(*) AS n FROM lifecycle").json()["rows"] == [{"n": 2}]
    anonymous = requests.get(f"{server.url}/user/default/api/v1/viz/lifecycle").json()
    assert anonymous["privacy"] == "PUBLIC"

    dataset.privacy = "PRIVATE"
    dataset.save()
    assert _anon(server, "SELECT count(*) AS n FROM lifecycle").status_code == 403

    dataset.delete()
    r = requests.get(f"{server.url}/user/default/api/v1/viz/{dataset.id}", params={"api_key": server.token})
    assert r.status_code == 404 and "errors" in r.json()
    assert "lifecycle" not in _tables(server)


def test_renaming_a_dataset_renames_its_table_and_keeps_its_id_privacy_and_attributes(
    server: RunningServer, files: Path
) -> None:
    manager = DatasetManager(_auth(server))
    dataset = manager.create(str(files / "cities.csv"), table_name="before_rename")
    other = manager.create(str(files / "cities.csv"), table_name="name_in_use")
    dataset.privacy = "PUBLIC"
    dataset.description = "kept"
    dataset.save()
    dataset.name = "after_rename"
    dataset.save()
    again = manager.get(dataset.id)
    assert (again.name, again.privacy, again.description) == ("after_rename", "PUBLIC", "kept")
    assert _sql(server, "SELECT count(*) AS n FROM after_rename") == [{"n": 2}]
    assert _anon(server, "SELECT count(*) AS n FROM after_rename").json()["rows"] == [{"n": 2}]
    assert "before_rename" not in _tables(server)
    url = f"{server.url}/user/default/api/v1/viz/{dataset.id}"
    for bad in ("Not Valid", "1starts_with_digit", "name_in_use"):
        r = requests.put(url, params={"api_key": server.token}, json={"id": dataset.id, "name": bad})
        assert 400 <= r.status_code < 500 and "errors" in r.json(), (bad, r.text)
    assert manager.get(dataset.id).name == "after_rename"  # the refused renames changed nothing
    assert _sql(server, "SELECT count(*) AS n FROM name_in_use") == [{"n": 2}]
    dataset.delete()
    other.delete()


def test_a_table_renamed_with_sql_keeps_its_dataset_and_its_carto_columns(
    server: RunningServer, files: Path
) -> None:
    manager = DatasetManager(_auth(server))
    dataset = manager.create(str(files / "cities.csv"), table_name="sql_before")
    dataset.privacy = "LINK"
    dataset.description = "renamed by SQL"
    dataset.save()
    _sql(server, "ALTER TABLE sql_before RENAME TO sql_after")
    again = manager.get(dataset.id)  # the same dataset, under its new name
    assert (again.name, again.privacy, again.description) == ("sql_after", "LINK", "renamed by SQL")
    assert "sql_before" not in [d.name for d in manager.all()]
    # still cartodbfied: a new row gets its cartodb_id and the_geom_webmercator
    _sql(
        server,
        "INSERT INTO sql_after (city, the_geom) VALUES ('Nice', ST_SetSRID(ST_MakePoint(7.26, 43.7), 4326))",
    )
    rows = _sql(
        server, "SELECT cartodb_id, the_geom_webmercator IS NOT NULL AS wm FROM sql_after WHERE city = 'Nice'"
    )
    assert rows == [{"cartodb_id": 3, "wm": True}]
    dataset.delete()


def test_derived_visualizations_are_empty(server: RunningServer) -> None:
    r = requests.get(
        f"{server.url}/user/default/api/v1/viz/", params={"api_key": server.token, "type": "derived"}
    )
    assert r.json()["visualizations"] == [] and r.json()["total_entries"] == 0


# -- grants --------------------------------------------------------------------------------------------


def test_imports_need_a_create_grant(server: RunningServer, files: Path) -> None:
    from carto.api_keys import APIKeyManager

    keys = APIKeyManager(_auth(server))
    reader = keys.create(name="import-reader", apis=["sql"], tables=[])
    data = (files / "cities.csv").read_bytes()
    r = _post_file(server, "denied.csv", data, token=reader.token)
    assert r.status_code == 403 and "imports" in r.json()["errors"]
    assert "denied" not in _tables(server)
    r = requests.post(
        f"{server.url}/user/default/api/v3/api_keys/",
        json={
            "name": "import-creator",
            "grants": [
                {"type": "apis", "apis": ["sql"]},
                {
                    "type": "database",
                    "tables": [],
                    "schemas": [{"name": "public", "permissions": ["create"]}],
                },
            ],
            "api_key": server.token,
        },
    )
    assert r.status_code == 201, r.text
    creator = r.json()["token"]
    r = _post_file(server, "granted.csv", data, token=creator)
    assert r.status_code == 200
    assert _wait(server, r.json()["item_queue_id"])["state"] == "complete"
    assert "granted" in _tables(server)
    # like the tables it creates with SQL, a key owns what it imports: it reads and writes it
    r = requests.get(f"{server.url}/user/default/api/v1/viz/granted", params={"api_key": creator})
    assert r.status_code == 200 and r.json()["name"] == "granted"
    r = requests.get(
        f"{server.url}/user/default/api/v2/sql",
        params={"q": "delete from granted where cartodb_id = 1", "api_key": creator},
    )
    assert r.status_code == 200 and r.json()["total_rows"] == 1
    # and only it: the reader key made above sees nothing of it
    r = requests.get(f"{server.url}/user/default/api/v1/viz/granted", params={"api_key": reader.token})
    assert r.status_code == 404
    # a reader sees datasets; changing or deleting one needs write access to the bucket
    reader_token = server.token_for(bucket_permissions={"in.c-public": "read"})
    r = requests.get(f"{server.url}/user/default/api/v1/viz/granted", params={"api_key": reader_token})
    assert r.status_code == 200 and r.json()["name"] == "granted"
    r = requests.delete(f"{server.url}/user/default/api/v1/viz/granted", params={"api_key": reader_token})
    assert r.status_code == 403 and isinstance(r.json()["errors"], list)
    r = requests.put(
        f"{server.url}/user/default/api/v1/viz/granted", json={"privacy": "PUBLIC", "api_key": reader_token}
    )
    assert r.status_code == 403
    assert "granted" in _tables(server)


# -- hostile files ---------------------------------------------------------------------------------------


def _zip(entries: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, data in entries.items():
            z.writestr(name, data)
    return buf.getvalue()


def _bomb() -> bytes:
    buf = io.BytesIO()
    with (
        zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z,
        z.open("bomb.csv", "w", force_zip64=True) as f,
    ):
        f.write(b"a,b\n")
        chunk = b"0" * (1 << 20)
        for _ in range(200):  # 200 MiB of zeros, about 200 KB compressed
            f.write(chunk)
    return buf.getvalue()


@pytest.fixture(scope="module")
def bomb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("bombs"), import_max_inflated_bytes=50 * 1024 * 1024)
    yield running
    running.stop()


HOSTILE = {
    "zip bomb": ("bomb.zip", _bomb, 6666),
    "path traversal": ("evil.zip", lambda: _zip({"../x.csv": b"a,b\n1,2\n"}), 1003),
    "10,000 columns": (
        "wide.csv",
        lambda: (",".join(f"c{i}" for i in range(10_000)) + "\n" + ",".join("1" * 10_000) + "\n").encode(),
        2004,
    ),
    "broken encoding": ("broken.csv", lambda: "id,name\n1,Café\n".encode() + b"2,caf\xe9 \xff\n", 2006),
    "empty file": ("empty.csv", lambda: b"", 1005),
    "unsupported extension": ("notes.docx", lambda: b"PK\x03\x04 not really", 1002),
    "unsupported file in a zip": ("docs.zip", lambda: _zip({"notes.docx": b"hello"}), 1002),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_files_fail_with_carto_codes_and_leave_nothing(bomb_server: RunningServer, case: str) -> None:
    name, make, code = HOSTILE[case]
    before = _tables(bomb_server)
    r = _post_file(bomb_server, name, make())
    assert r.status_code == 200, r.text
    body = _wait(bomb_server, r.json()["item_queue_id"])
    assert body["state"] == "failure" and body["success"] is False
    assert body["error_code"] == code, body
    assert set(body["get_error_text"]) == {"title", "what_about", "source"}
    assert _tables(bomb_server) == before
    assert not list((bomb_server.settings.data_dir / "tmp" / "sql").glob("*/rw/import-*"))


def test_the_sdk_raises_on_a_failed_import(server: RunningServer, tmp_path: Path) -> None:
    empty = tmp_path / "nothing.csv"
    empty.write_bytes(b"")
    with pytest.raises(CartoException, match="failed import"):
        DatasetManager(_auth(server)).create(str(empty))


def test_an_import_without_data_source_answers_200(server: RunningServer) -> None:
    r = requests.post(
        f"{server.url}/user/default/api/v1/imports/", json={"api_key": server.token, "client": "x"}
    )
    assert r.status_code == 200 and r.json()["success"] is True
    body = _wait(server, r.json()["item_queue_id"])
    assert body["state"] == "failure"


def test_unknown_import_is_404_in_the_import_envelope(server: RunningServer) -> None:
    r = requests.get(f"{server.url}/user/default/api/v1/imports/424242", params={"api_key": server.token})
    assert r.status_code == 404 and "imports" in r.json()["errors"]
