"""Hostile input to the Maps API: every request gets a 4xx in the Maps envelope, never a 500,
and nothing changes."""

from __future__ import annotations

import json
from typing import Any

import pytest
import requests

from support.server import RunningServer


@pytest.fixture(scope="module")
def base(server: RunningServer) -> str:
    url = f"{server.url}/user/default/"
    for q in (
        "CREATE TABLE pins (name text, the_geom geometry(Geometry, 4326))",
        "SELECT CDB_CartodbfyTable('pins')",
        "INSERT INTO pins (name, the_geom) VALUES ('a', ST_SetSRID(ST_MakePoint(1, 1), 4326))",
    ):
        requests.post(url + "api/v2/sql", data={"q": q, "api_key": server.token}).raise_for_status()
    return url


@pytest.fixture(scope="module")
def group(server: RunningServer, base: str) -> str:
    config = {"version": "1.0.1", "layers": [{"type": "cartodb", "options": {"sql": "select * from pins"}}]}
    r = requests.post(base + "api/v1/map", json={**config, "api_key": server.token})
    assert r.status_code == 200, r.text
    return str(r.json()["layergroupid"])


def _maps_error(r: requests.Response, *statuses: int) -> dict[str, Any]:
    assert r.status_code in statuses, (r.status_code, r.text)
    body: dict[str, Any] = r.json()
    assert isinstance(body["errors"], list) and body["errors"][0]
    assert body["errors_with_context"][0]["message"] == body["errors"][0]
    return body


CONFIGS = [
    ("[]", "a map config must be a JSON object"),
    ('{"layers": "x"}', "Missing layers"),
    ('{"version": "9.9.9", "layers": [{"options": {"sql": "select 1"}}]}', "version"),
    ('{"layers": [{"type": "torque2", "options": {}}]}', "Unsupported layer type"),
    ('{"layers": [{"type": "cartodb"}]}', "Missing options"),
    ('{"layers": [{"type": "cartodb", "options": {"sql": ""}}]}', "Missing sql"),
    ('{"layers": [{"type": "http", "options": {"urlTemplate": "file:///etc/passwd"}}]}', "urlTemplate"),
    (
        '{"layers": [{"type": "cartodb", "options": {"sql": "select * from pins", "geom_column": "the_geom"}}]}',
        "geom_column",
    ),
    (
        '{"layers": [{"type": "cartodb", "options": {"sql": "select * from pins", "interactivity": ["x\\"; --"]}}]}',
        "invalid column",
    ),
    (
        '{"layers": [{"type": "cartodb", "options": {"sql": "select name from pins"}}]}',
        "the_geom_webmercator",
    ),
    ('{"layers": [{"type": "cartodb", "options": {"sql": "select * from pins; drop table pins"}}]}', ""),
    ('{"layers": [{"type": "cartodb", "options": {"sql": "select * from read_csv(\'/etc/passwd\')"}}]}', ""),
    (
        '{"layers": [{"type": "cartodb", "options": {"sql": "select * from pins",'
        ' "cartocss": "#layer { polygon-pattern-file: url(http://127.0.0.1/x.png); }"}}]}',
        "polygon-pattern-file",
    ),
    (
        '{"layers": [{"type": "cartodb", "options": {"sql": "select * from pins",'
        ' "cartocss": "#layer { marker-fill: "}}]}',
        "",
    ),
    ("{not json", "malformed"),
]


@pytest.mark.parametrize(("body", "says"), CONFIGS)
def test_bad_configs_are_refused_in_the_maps_envelope(
    server: RunningServer, base: str, body: str, says: str
) -> None:
    r = requests.post(
        base + "api/v1/map",
        data=body,
        headers={"Content-Type": "application/json", "X-StorageApi-Token": server.token},
    )
    err = _maps_error(r, 400, 403)
    assert says in err["errors"][0]
    rows = requests.post(
        base + "api/v2/sql", data={"q": "select count(*) as n from pins", "api_key": server.token}
    )
    assert rows.json()["rows"] == [{"n": 1}]


def test_bodies_too_large_or_too_deep(server: RunningServer, base: str) -> None:
    huge = json.dumps({"layers": [{"type": "cartodb", "options": {"sql": "select 1 --" + "x" * 2_000_000}}]})
    r = requests.post(base + "api/v1/map", data=huge, headers={"Content-Type": "application/json"})
    assert r.status_code == 413
    deep = "[" * 100_000 + "]" * 100_000
    r = requests.post(base + "api/v1/map", data=deep, headers={"Content-Type": "application/json"})
    assert "nests too deeply" in _maps_error(r, 400)["errors"][0]
    # the SQL API and the Export API read JSON bodies the same way
    r = requests.post(base + "api/v2/sql", data=deep, headers={"Content-Type": "application/json"})
    assert r.status_code == 400 and "nests too deeply" in r.json()["error"][0]
    r = requests.post(
        f"{server.url}/data-tools/api/v1/exports",
        data=deep,
        headers={"Content-Type": "application/json", "X-StorageApi-Token": server.token},
    )
    assert r.status_code == 400 and "nests too deeply" in r.text
    nested = "#layer { " * 40 + "marker-width: 1;" + " }" * 40
    config = {"layers": [{"type": "cartodb", "options": {"sql": "select * from pins", "cartocss": nested}}]}
    r = requests.post(base + "api/v1/map", json={**config, "api_key": server.token})
    _maps_error(r, 400)


@pytest.mark.parametrize(
    "path",
    [
        "api/v1/map/../../../etc/passwd/0/0/0.png",
        "api/v1/map/nonexistent/0/0/0.png",
        "api/v1/map/{g}/0/-1/0/0.png",
        "api/v1/map/{g}/0/1/2/0.png",
        "api/v1/map/{g}/0/31/0/0.mvt",
        "api/v1/map/{g}/0/0/0/99999999999999999999.mvt",
        "api/v1/map/{g}/0/0/0/0.svg",
        "api/v1/map/{g}/0/0/0/0@9x.png",
        "api/v1/map/{g}/0/0/0/0@2x.mvt",
        "api/v1/map/{g}/5/0/0/0.mvt",
        "api/v1/map/{g}/0,x/0/0/0.mvt",
        "api/v1/map/{g}/0/0/0/0.grid.json",
        "api/v1/map/{g}/0/attributes/1",
        "api/v1/map/static/center/{g}/2/91/0/100/100.png",
        "api/v1/map/static/center/{g}/2/0/0/100000/100.png",
        "api/v1/map/static/center/{g}/2/nan/0/100/100.png",
        "api/v1/map/static/bbox/{g}/1,2,3/100/100.png",
        "api/v1/map/static/bbox/{g}/3,3,1,1/100/100.png",
        "api/v1/map/static/center/{g}/2/0/0/100/100.jpg",
        "api/v1/map/named/nope",
    ],
)
def test_bad_tile_requests_are_4xx(server: RunningServer, base: str, group: str, path: str) -> None:
    r = requests.get(base + path.format(g=group), params={"api_key": server.token})
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    if "/api/v1/map/" in r.url and r.headers.get("content-type", "").startswith("application/json"):
        _maps_error(r, r.status_code)


def test_jsonp_callbacks_are_names_only(server: RunningServer, base: str) -> None:
    config = json.dumps({"layers": [{"type": "cartodb", "options": {"sql": "select * from pins"}}]})
    ok = requests.get(
        base + "api/v1/map", params={"config": config, "callback": "cb", "api_key": server.token}
    )
    assert ok.status_code == 200 and ok.text.startswith("/**/cb(")
    assert ok.headers["content-type"].startswith("text/javascript")
    bad = requests.get(
        base + "api/v1/map", params={"config": config, "callback": "alert(1);//", "api_key": server.token}
    )
    _maps_error(bad, 400)


def test_template_abuse(server: RunningServer, base: str) -> None:
    def post(doc: Any) -> requests.Response:
        return requests.post(base + "api/v1/map/named", params={"api_key": server.token}, json=doc)

    layergroup = {"layers": [{"type": "cartodb", "options": {"sql": "select * from pins"}}]}
    for doc in (
        [],
        {"version": "0.0.1", "name": "../x", "layergroup": layergroup},
        {
            "version": "0.0.1",
            "name": "t",
            "auth": {"method": "token", "valid_tokens": []},
            "layergroup": layergroup,
        },
        {"version": "0.0.1", "name": "t", "auth": {"method": "magic"}, "layergroup": layergroup},
        {
            "version": "0.0.1",
            "name": "t",
            "placeholders": {"1bad": {"type": "number", "default": 1}},
            "layergroup": layergroup,
        },
        {
            "version": "0.0.1",
            "name": "t",
            "placeholders": {"p": {"type": "sql_raw", "default": 1}},
            "layergroup": layergroup,
        },
        {
            "version": "0.0.1",
            "name": "t",
            "placeholders": {"p": {"type": "number"}},
            "layergroup": layergroup,
        },
        {
            "version": "0.0.1",
            "name": "t",
            "placeholders": {"p": {"type": "number", "default": "x"}},
            "layergroup": layergroup,
        },
    ):
        _maps_error(post(doc), 400)
    assert requests.get(base + "api/v1/map/named", params={"api_key": server.token}).json() == {
        "template_ids": []
    }
    # without a key: 401; with a reader's token: 403
    _maps_error(requests.post(base + "api/v1/map/named", json={"version": "0.0.1"}), 401)
    reader = server.token_for(bucket_permissions={"in.c-public": "read"})
    _maps_error(requests.get(base + "api/v1/map/named", params={"api_key": reader}), 403)
