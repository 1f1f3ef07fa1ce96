"""Every example of the ``carto`` SDK's README (seed 003) runs against entrepot.

The ``python`` blocks are read from the seed (``python_blocks``), in document order, and run in
one namespace with the official SDK (carto 1.11.3), as a reader pastes them one after the other.
The only changes are the README's placeholders: the base URL (``https://{user}.carto.com/`` →
this server's ``/user/{user}/``), ``USERNAME``, the API key, and the values the README asks the
reader to write in (``LOCAL_FILE_OR_URL``, ``URL_TO_DATASET``, ``DATASET_ID``, ``MAP_NAME``,
``LIST_OF_SQL_QUERIES``, and the ``job_id``/``NEW_QUERY`` of the batch block), plus two fixes
the SDK forces on any reader:

- ``from carto.auth import NoAuthClient``: carto 1.11.3 has no such name; the class is
  ``pyrestcli.auth.NoAuthClient`` (what ``carto.auth`` builds on);
- ``print data['rows']`` is Python 2: it runs as ``print(data['rows'])``.

Files are the README's names (``copy_from.csv``, ``export.csv``) in the reader's folder.

The batch SQL blocks run on a server without job workers, so that the job the README reads,
updates and cancels is still pending ("for long lasting SQL queries"), as on CARTO. The Import
API blocks run on a server that may download from 127.0.0.1 (``url_import_allowed_hosts``),
where a tiny HTTP server plays the reader's remote URL.

The Maps API section (its last four blocks) reads JSON files the reader writes: a named map
template, an anonymous MapConfig and a named map's placeholder values (``JSON_TEMPLATE``), and
the template's id and token (``NAMED_MAP_ID``, ``NAMED_MAP_TOKEN``).
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import shutil
import warnings
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests

from compat.keboola_seeds import python_blocks
from support.server import RunningServer, start_server
from support.sources import Source, serve_source

with warnings.catch_warnings():
    warnings.simplefilter("ignore")  # pkg_resources deprecation inside carto.auth
    from carto.auth import APIKeyAuthClient
    from carto.datasets import DatasetManager
    from carto.sql import SQLClient
    from pyrestcli.auth import NoAuthClient

pytestmark = pytest.mark.filterwarnings("ignore")

SEED_003 = "003_f3ce1443026a529e.txt"
FIXTURES = Path(__file__).parent / "carto_fixtures"
MAPS_BLOCKS = 4  # the Maps API section closes the README
PLACES = b"id,city,lat,lon\n1,Paris,48.85,2.35\n2,Lyon,45.76,4.83\n"
STORES = "store,latitude,longitude\nLouvre,48.8606,2.3376\nBellecour,45.7578,4.8320\n"
CAFES = "cafe,latitude,longitude\nFlore,48.8541,2.3326\nProcope,48.8530,2.3389\n"


def _all_blocks() -> list[str]:
    blocks = python_blocks(SEED_003)
    assert len(blocks) == 17 + MAPS_BLOCKS
    assert all("carto.maps" in b for b in blocks[-MAPS_BLOCKS:])
    assert not any("carto.maps" in b for b in blocks[:-MAPS_BLOCKS])
    return blocks


def _blocks() -> list[str]:
    """The blocks before the Maps API section."""
    return _all_blocks()[:-MAPS_BLOCKS]


def fill(block: str, **values: object) -> str:
    """Write the reader's values into the README's ``NAME = ...`` placeholders (each once)."""
    for name, value in values.items():
        block, n = re.subn(rf"^{name}\s*=.*$", f"{name} = {value!r}", block, count=1, flags=re.M)
        assert n == 1, f"no placeholder {name} in\n{block}"
    return block


def authenticate(block: str, server: RunningServer) -> str:
    """The base URL, the user and the API key of the authentication blocks."""
    assert '"https://{user}.carto.com/"' in block
    block = block.replace('"https://{user}.carto.com/"', repr(server.url + "/user/{user}/"))
    block = block.replace('api_key="myapikey"', f"api_key={server.token!r}")
    block = block.replace("from carto.auth import NoAuthClient", "from pyrestcli.auth import NoAuthClient")
    return fill(block, USERNAME="default")


def python3(block: str) -> str:
    return re.sub(r"^print (.+)$", r"print(\1)", block, flags=re.M)


def run(block: str, ns: dict[str, Any]) -> str:
    """Run a block in the reader's namespace; what it printed."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(block, ns)
    return out.getvalue()


@pytest.fixture
def reader_dir(tmp_path, monkeypatch) -> Path:  # type: ignore[no-untyped-def]
    folder = tmp_path / "reader"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


@pytest.fixture
def idle(tmp_path) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    """No job workers: a batch job stays pending, as a long-lasting one does on CARTO."""
    running = start_server(tmp_path / "idle", workers=0)
    yield running
    running.stop()


@pytest.fixture
def importer(tmp_path) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    running = start_server(tmp_path / "importer", url_import_allowed_hosts=["127.0.0.1"])
    yield running
    running.stop()


@pytest.fixture
def source() -> Iterator[Source]:
    with serve_source() as s:
        s.body = PLACES
        yield s


def _master(server: RunningServer) -> APIKeyAuthClient:
    return APIKeyAuthClient(api_key=server.token, base_url=f"{server.url}/user/default/")


def test_seed_003_authentication_and_sql_api(idle, reader_dir) -> None:  # type: ignore[no-untyped-def]
    blocks = _blocks()
    master = SQLClient(_master(idle))
    master.send("CREATE TABLE mytable (id integer, name text)")  # the reader's table
    master.send("INSERT INTO mytable VALUES (1, 'one'), (2, 'two')")
    shutil.copy(FIXTURES / "copy_from.csv", reader_dir / "copy_from.csv")
    ns: dict[str, Any] = {"__name__": "seed003"}

    # Authentication: unauthenticated, then with the API key
    run(authenticate(blocks[0], idle), ns)
    assert isinstance(ns["auth_client"], NoAuthClient)
    assert ns["auth_client"].base_url == f"{idle.url}/user/default/"
    anonymous = ns["auth_client"]
    run(authenticate(blocks[1], idle), ns)
    assert isinstance(ns["auth_client"], APIKeyAuthClient)
    assert ns["auth_client"].api_key == idle.token

    # SQL API: send, print the rows
    printed = run(python3(blocks[2]), ns)
    assert sorted(ns["data"]["rows"], key=lambda r: r["id"]) == [
        {"id": 1, "name": "one"},
        {"id": 2, "name": "two"},
    ]
    assert "'name': 'one'" in printed and "some error" not in printed
    # "API key is mandatory for all API requests except for sending SQL queries to public datasets"
    assert SQLClient(anonymous).send("select 1 as one")["rows"] == [{"one": 1}]

    # Batch SQL: create, print the job id; then read, update, cancel it
    printed = run(fill(blocks[3], LIST_OF_SQL_QUERIES=["UPDATE mytable SET name = 'uno' WHERE id = 1"]), ns)
    job_id = ns["createJob"]["job_id"]
    assert printed.strip() == job_id
    assert ns["createJob"]["status"] == "pending"
    ns["job_id"] = job_id
    ns["NEW_QUERY"] = "UPDATE mytable SET name = 'eins' WHERE id = 1"
    run(blocks[4], ns)
    assert ns["readJob"]["job_id"] == job_id and ns["readJob"]["status"] == "pending"
    assert ns["updateJob"]["query"] == ns["NEW_QUERY"]
    assert ns["cancelJob"] == "cancelled"
    assert ns["batchSQLClient"].read(job_id)["status"] == "cancelled"

    # COPY: create and cartodbfy copy_example, COPY FROM copy_from.csv, COPY TO export.csv
    run(blocks[5], ns)
    assert ns["result"]["total_rows"] == 3
    exported = list(csv.DictReader(io.StringIO((reader_dir / "export.csv").read_text())))
    assert {"cartodb_id", "the_geom", "the_geom_webmercator", "name", "age"} <= set(exported[0])
    assert sorted(r["name"] for r in exported) == ["North West", "South East", "Souther Easter"]
    # from a file object, then from a generator
    run(blocks[6], ns)
    assert master.send("select count(*) as n from copy_example")["rows"] == [{"n": 6}]
    run(blocks[7], ns)
    counted = master.send("select count(*) as n, count(distinct cartodb_id) as ids from copy_example")
    assert counted["rows"] == [{"n": 85, "ids": 85}]


def test_seed_003_import_api(importer, source, reader_dir) -> None:  # type: ignore[no-untyped-def]
    blocks = _blocks()
    (reader_dir / "stores.csv").write_text(STORES)
    (reader_dir / "cafes.csv").write_text(CAFES)
    cafes = DatasetManager(_master(importer)).create("cafes.csv", create_vis=True)  # the map to export
    ns: dict[str, Any] = {"__name__": "seed003"}
    run(authenticate(blocks[1], importer), ns)
    answers: list[requests.Response] = []
    send = ns["auth_client"].send

    def recording(*args: Any, **kwargs: Any) -> requests.Response:
        answer: requests.Response = send(*args, **kwargs)
        answers.append(answer)
        return answer

    ns["auth_client"].send = recording

    # import a local file
    run(fill(blocks[8], LOCAL_FILE_OR_URL="stores.csv"), ns)
    stores = ns["dataset"]
    assert (stores.name, stores.privacy, stores.table.row_count) == ("stores", "PRIVATE", 2)
    assert stores.synchronization.id is None  # the SDK makes an object of a null field
    assert stores.dependent_visualizations_count == 0

    # a sync dataset from a URL (the SDK lowercases it; this one is lowercase)
    assert source.url == source.url.lower()
    run(fill(blocks[9], URL_TO_DATASET=source.url), ns)
    places = ns["dataset"]
    assert places.name == "places" and places.table.row_count == 2
    assert places.synchronization is not None
    assert (places.synchronization.url, places.synchronization.interval) == (source.url, 900)
    assert places.synchronization.state == "success"

    # the same with SyncTableJobManager, waiting for the first run; then a forced sync
    run(fill(blocks[10], URL_TO_DATASET=source.url), ns)
    sync = ns["syncTable"]
    assert sync.state == "success" and ns["sync_id"] == sync.id
    assert sync.name == "places_1" and sync.visualization_id
    assert answers[-1].request.method == "PUT" and answers[-1].status_code == 200  # force_sync

    # list the import jobs (carto 1.11.3 never builds FileImportJobs from a listing: it is [])
    run(blocks[11], ns)
    assert ns["file_imports"] == []
    assert answers[-1].request.method == "GET" and "/api/v1/imports" in answers[-1].request.url
    assert answers[-1].status_code == 200 and len(answers[-1].json()["imports"]) >= 2

    # all the datasets
    run(blocks[12], ns)
    assert {d.name for d in ns["datasets"]} == {"cafes", "stores", "places", "places_1"}
    assert all(isinstance(d.dependent_visualizations_count, int) for d in ns["datasets"])
    by_name = {d.name: d for d in ns["datasets"]}
    assert by_name["places_1"].id == sync.visualization_id
    assert by_name["places_1"].synchronization.id == sync.id
    assert by_name["cafes"].dependent_visualizations_count == 1

    # one dataset, by id
    run(fill(blocks[13], DATASET_ID=stores.id), ns)
    assert (ns["dataset"].id, ns["dataset"].name) == (stores.id, "stores")

    # make it public: anyone reads it
    run(fill(blocks[14], DATASET_ID=stores.id), ns)
    assert DatasetManager(_master(importer)).get(stores.id).privacy == "PUBLIC"
    anonymous = SQLClient(NoAuthClient(base_url=f"{importer.url}/user/default/"))
    assert anonymous.send("select count(*) as n from stores")["rows"] == [{"n": 2}]

    # delete it
    run(fill(blocks[15], DATASET_ID=stores.id), ns)
    assert answers[-1].request.method == "DELETE" and answers[-1].status_code == 204
    assert "stores" not in {d.name for d in DatasetManager(_master(importer)).all()}

    # export a map: the URL of a .carto file
    printed = run(fill(blocks[16], MAP_NAME="cafes"), ns)
    url = ns["url"]
    assert printed.strip() == url and url.startswith(importer.url)
    carto_file = requests.get(url, params={"api_key": importer.token})
    assert carto_file.status_code == 200
    with zipfile.ZipFile(io.BytesIO(carto_file.content)) as z:
        assert "cafes.carto.json" in z.namelist()
    assert cafes.name == "cafes"


NAMED_TEMPLATE = {
    "version": "0.0.1",
    "name": "seed_map",
    "auth": {"method": "token", "valid_tokens": ["seed-token"]},
    "placeholders": {"color": {"type": "css_color", "default": "#0000ff"}},
    "layergroup": {
        "version": "1.0.1",
        "layers": [
            {
                "type": "cartodb",
                "options": {
                    "cartocss_version": "2.1.1",
                    "cartocss": "#layer { marker-fill: <%= color %>; }",
                    "sql": "select * from seed_places",
                },
            }
        ],
    },
    "view": {"zoom": 4, "center": {"lng": 2.35, "lat": 48.85}},
}
ANONYMOUS_CONFIG = {
    "version": "1.0.1",
    "layers": [
        {
            "type": "cartodb",
            "options": {
                "cartocss_version": "2.1.1",
                "cartocss": "#layer { marker-fill: #F11810; }",
                "sql": "select * from seed_places",
            },
        }
    ],
}


def test_seed_003_maps_api(server, reader_dir) -> None:  # type: ignore[no-untyped-def]
    import json

    blocks = _all_blocks()[-MAPS_BLOCKS:]
    master = SQLClient(_master(server))
    master.send("CREATE TABLE seed_places (city text, the_geom geometry(Geometry, 4326))")
    master.send("SELECT CDB_CartodbfyTable('seed_places')")
    master.send(
        "INSERT INTO seed_places (city, the_geom) VALUES ('Paris', ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326))"
    )
    (reader_dir / "named_map.json").write_text(json.dumps(NAMED_TEMPLATE))
    (reader_dir / "anonymous_map.json").write_text(json.dumps(ANONYMOUS_CONFIG))
    (reader_dir / "params.json").write_text(json.dumps({"color": "#ff0000"}))
    ns: dict[str, Any] = {"__name__": "seed003"}
    run(authenticate(_all_blocks()[1], server), ns)

    # create a named map, then an anonymous one
    run(fill(blocks[0], JSON_TEMPLATE="named_map.json"), ns)
    assert ns["named"].template_id == "seed_map"
    run(fill(blocks[1], JSON_TEMPLATE="anonymous_map.json"), ns)
    anonymous = ns["anonymous"]
    assert anonymous.layergroupid and anonymous.metadata["layers"][0]["type"] == "mapnik"
    tile = requests.get(anonymous.get_tile_url(0, 0, 0, layer_id="0", extension="mvt"))
    assert tile.status_code == 200 and b"Paris" in tile.content

    # instantiate the named map with the reader's values and its token
    run(
        fill(blocks[2], JSON_TEMPLATE="params.json", NAMED_MAP_ID="seed_map", NAMED_MAP_TOKEN="seed-token"),
        ns,
    )
    named_map = ns["named_map"]
    assert named_map.layergroupid
    png = requests.get(f"{server.url}/user/default/api/v1/map/{named_map.layergroupid}/0/0/0/0.png")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"

    # update (no view), delete, list
    run(fill(blocks[3], NAMED_MAP_ID="seed_map"), ns)
    assert ns["named_map"].view is None
    assert [m.template_id for m in ns["named_maps"]] == []
