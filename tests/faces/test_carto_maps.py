"""CARTO's Maps API through the official ``carto`` SDK (``AnonymousMap``, ``NamedMapManager``,
``NamedMap``) and ``requests``: layergroups, MVT tiles decoded with mapbox-vector-tile, PNG
tiles decoded with Pillow, UTFGrids, attributes, static images, named-map placeholders, grants,
privacy and tiles that follow the data."""

from __future__ import annotations

import io
import warnings
from typing import Any

import mapbox_vector_tile
import pytest
import requests
from PIL import Image

from support.server import RunningServer

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from carto.auth import APIKeyAuthClient
    from carto.exceptions import CartoException
    from carto.maps import AnonymousMap, NamedMap, NamedMapManager
    from pyrestcli.exceptions import NotFoundException

pytestmark = pytest.mark.filterwarnings("ignore")

# Madrid and Sydney: one in each of the z1 tiles (0,0) and (1,1)
QUAKES = [(1, "madrid", 5, -3.7, 40.4), (2, "sydney", 2, 151.2, -33.9), (3, "lisbon", 4, -9.1, 38.7)]
CARTOCSS = "#layer { marker-fill: #FF0000; marker-width: 12; marker-allow-overlap: true; }"


def _sql(server: RunningServer, q: str, token: str | None = None) -> dict[str, Any]:
    r = requests.post(
        f"{server.url}/user/default/api/v2/sql", data={"q": q, "api_key": token or server.token}
    )
    assert r.status_code == 200, r.text
    return r.json()  # type: ignore[no-any-return]


@pytest.fixture(scope="module")
def base(server: RunningServer) -> str:
    return f"{server.url}/user/default/"


@pytest.fixture(scope="module")
def quakes(server: RunningServer) -> str:
    _sql(server, "CREATE TABLE quakes (name text, magnitude integer, the_geom geometry(Geometry, 4326))")
    _sql(server, "SELECT CDB_CartodbfyTable('quakes')")
    values = ", ".join(
        f"({i}, '{n}', {m}, ST_SetSRID(ST_MakePoint({lon}, {lat}), 4326))" for i, n, m, lon, lat in QUAKES
    )
    _sql(server, f"INSERT INTO quakes (cartodb_id, name, magnitude, the_geom) VALUES {values}")
    r = requests.put(
        f"{server.url}/user/default/api/v2/sql/tables/quakes/privacy",
        data={"privacy": "public", "api_key": server.token},
    )
    assert r.status_code == 200, r.text
    _sql(server, "CREATE TABLE hidden (name text, the_geom geometry(Geometry, 4326))")
    _sql(server, "SELECT CDB_CartodbfyTable('hidden')")
    _sql(
        server, "INSERT INTO hidden (name, the_geom) VALUES ('secret', ST_SetSRID(ST_MakePoint(2, 41), 4326))"
    )
    return "quakes"


def _config(sql: str = "select * from quakes", **options: Any) -> dict[str, Any]:
    return {
        "version": "1.0.1",
        "layers": [
            {
                "type": "http",
                "options": {"urlTemplate": "https://{s}.example.com/{z}/{x}/{y}.png", "subdomains": ["a"]},
            },
            {
                "type": "cartodb",
                "options": {"sql": sql, "cartocss": CARTOCSS, "cartocss_version": "2.1.1", **options},
            },
        ],
    }


def _anonymous(base: str, config: dict[str, Any], token: str = "default_public") -> AnonymousMap:
    amap = AnonymousMap(APIKeyAuthClient(api_key=token, base_url=base))
    amap.instantiate(config)
    return amap


def _get(url: str, **headers: str) -> requests.Response:
    return requests.get(url, headers=headers)


def _decode(data: bytes) -> dict[str, Any]:
    return mapbox_vector_tile.decode(data, default_options={"y_coord_down": True})  # type: ignore[no-any-return]


# -- anonymous maps --------------------------------------------------------------------------------


def test_an_anonymous_map_by_the_sdk_and_its_vector_tiles(
    server: RunningServer, base: str, quakes: str
) -> None:
    amap = _anonymous(base, _config(interactivity="cartodb_id"))
    assert amap.layergroupid and ":" in amap.layergroupid
    layers = amap.metadata["layers"]
    assert [x["type"] for x in layers] == ["http", "mapnik"]
    assert layers[1]["id"] == "layer1" and layers[1]["meta"]["fields"]["magnitude"] == "number"
    assert amap.last_updated
    url = amap.get_tile_url(0, 0, 0, layer_id="1", extension="mvt")
    r = _get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "application/vnd.mapbox-vector-tile"
    tile = _decode(r.content)
    features = tile["layer1"]["features"]
    assert sorted(f["properties"]["name"] for f in features) == ["lisbon", "madrid", "sydney"]
    assert {"the_geom", "the_geom_webmercator"}.isdisjoint(features[0]["properties"])
    extent = tile["layer1"]["extent"]
    madrid = next(f for f in features if f["properties"]["name"] == "madrid")
    x, y = madrid["geometry"]["coordinates"]
    assert (
        extent * 0.48 < x < extent * 0.5 and extent * 0.3 < y < extent * 0.4
    )  # west of 0°, north of the equator
    # z1: Sydney is in the south-east tile only
    east = _decode(_get(amap.get_tile_url(1, 1, 1, layer_id="1", extension="mvt")).content)
    assert [f["properties"]["name"] for f in east["layer1"]["features"]] == ["sydney"]
    # a tile with nothing in it is empty: 204
    empty = _get(amap.get_tile_url(1, 0, 1, layer_id="1", extension="mvt"))  # x=1, y=0, z=1: the north-east
    assert empty.status_code == 204 and empty.content == b""


def test_png_tiles_retina_grids_and_attributes(server: RunningServer, base: str, quakes: str) -> None:
    amap = _anonymous(
        base,
        _config(
            interactivity=["cartodb_id", "name"],
            attributes={"id": "cartodb_id", "columns": ["name", "magnitude"]},
        ),
    )
    r = _get(amap.get_tile_url(0, 0, 1, layer_id="1"))
    assert r.status_code == 200 and r.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(r.content)).convert("RGBA")
    assert image.size == (256, 256)
    # Madrid at lon -3.7, lat 40.4 in tile z1 (0,0): x ≈ 251, y ≈ 193
    red = [image.getpixel((px, py)) for px in range(245, 256) for py in range(185, 200)]
    assert any(p[0] > 200 and p[1] < 80 and p[3] > 200 for p in red), "no red marker where Madrid is"
    assert image.getpixel((5, 5))[3] == 0  # nothing drawn there: transparent
    retina = _get(f"{base}api/v1/map/{amap.layergroupid}/1/1/0/0@2x.png")
    assert Image.open(io.BytesIO(retina.content)).size == (512, 512)
    grid = _get(f"{base}api/v1/map/{amap.layergroupid}/1/1/0/0.grid.json").json()
    assert {"grid", "keys", "data"} <= set(grid)
    assert any(d.get("name") == "madrid" for d in grid["data"].values())
    attrs = _get(amap.get_tile_url(0, 0, 0, layer_id="1", feature_id="1")).json()
    assert attrs == {"name": "madrid", "magnitude": 5}
    missing = _get(f"{base}api/v1/map/{amap.layergroupid}/1/attributes/99")
    assert missing.status_code == 404 and missing.json()["errors"]


def test_static_images(server: RunningServer, base: str, quakes: str) -> None:
    amap = _anonymous(base, _config())
    r = _get(f"{base}api/v1/map/static/center/{amap.layergroupid}/2/40.4/-3.7/300/200.png")
    assert r.status_code == 200
    image = Image.open(io.BytesIO(r.content)).convert("RGBA")
    assert image.size == (300, 200)
    assert image.getpixel((150, 100))[0] > 200 and image.getpixel((150, 100))[3] > 200  # Madrid in the middle
    r = _get(f"{base}api/v1/map/static/bbox/{amap.layergroupid}/-10,35,0,45/200/200.png")
    assert r.status_code == 200 and Image.open(io.BytesIO(r.content)).size == (200, 200)


def test_errors_name_the_layer(server: RunningServer, base: str, quakes: str) -> None:
    r = requests.post(f"{base}api/v1/map", json=_config("select * from no_such_table"))
    assert r.status_code in (400, 404), r.text
    body = r.json()
    assert "no_such_table" in body["errors"][0]
    assert body["errors_with_context"][0]["layer"]["index"] == 1
    r = requests.post(f"{base}api/v1/map", json=_config(cartocss="#layer { marker-file: url(/etc/passwd); }"))
    assert r.status_code == 400 and "marker-file" in r.json()["errors"][0]
    r = requests.post(f"{base}api/v1/map", json=_config(cartocss="#layer { bogus-width: 3; }"))
    assert r.status_code == 400 and "bogus-width" in r.json()["errors"][0]
    r = requests.post(f"{base}api/v1/map", json=_config("delete from quakes"))
    assert r.status_code in (400, 403), r.text
    assert len(_sql(server, "select * from quakes")["rows"]) == len(QUAKES)
    r = requests.post(f"{base}api/v1/map", json={"version": "1.0.1", "layers": []})
    assert r.status_code == 400 and r.json()["errors_with_context"][0]["type"] == "unknown"


def test_private_tables_need_a_key(server: RunningServer, base: str, quakes: str) -> None:
    r = requests.post(f"{base}api/v1/map", json=_config("select * from hidden"))
    assert r.status_code == 403, r.text
    assert "permission denied" in r.json()["errors"][0]
    with pytest.raises(CartoException):
        _anonymous(base, _config("select * from hidden"))
    amap = _anonymous(base, _config("select * from hidden"), token=server.token)
    tile = _decode(_get(amap.get_tile_url(0, 0, 0, layer_id="1", extension="mvt")).content)
    assert [f["properties"]["name"] for f in tile["layer1"]["features"]] == ["secret"]


def test_keys_need_the_maps_grant(server: RunningServer, base: str, quakes: str) -> None:
    def key(apis: list[str]) -> str:
        r = requests.post(
            f"{base}api/v3/api_keys/",
            json={
                "name": f"maps_{'_'.join(apis)}",
                "grants": [
                    {"type": "apis", "apis": apis},
                    {
                        "type": "database",
                        "tables": [{"schema": "public", "name": "hidden", "permissions": ["select"]}],
                    },
                ],
                "api_key": server.token,
            },
        )
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    sql_only = key(["sql"])
    r = requests.post(f"{base}api/v1/map", json={**_config("select * from hidden"), "api_key": sql_only})
    assert r.status_code == 403 and "Maps API" in r.json()["errors"][0]
    both = key(["sql", "maps"])
    amap = _anonymous(base, _config("select * from hidden"), token=both)
    assert _get(amap.get_tile_url(0, 0, 0, layer_id="1", extension="mvt")).status_code == 200
    # the key is deleted: its maps serve nothing more
    requests.delete(f"{base}api/v3/api_keys/maps_sql_maps", params={"api_key": server.token})
    r = _get(amap.get_tile_url(0, 0, 0, layer_id="1", extension="mvt"))
    assert r.status_code == 403, r.text


def test_tiles_follow_the_data(server: RunningServer, base: str, quakes: str) -> None:
    amap = _anonymous(base, _config("select * from quakes where magnitude >= 4"))
    url = amap.get_tile_url(0, 0, 0, layer_id="1", extension="mvt")
    first = _get(url)
    assert first.headers["etag"] and first.headers["last-modified"]
    assert _get(url, **{"If-None-Match": first.headers["etag"]}).status_code == 304
    names = sorted(f["properties"]["name"] for f in _decode(first.content)["layer1"]["features"])
    assert names == ["lisbon", "madrid"]
    _sql(
        server,
        "INSERT INTO quakes (name, magnitude, the_geom) VALUES ('rome', 6, ST_SetSRID(ST_MakePoint(12.5, 41.9), 4326))",
    )
    second = _get(url, **{"If-None-Match": first.headers["etag"]})
    assert second.status_code == 200 and second.headers["etag"] != first.headers["etag"]
    names = sorted(f["properties"]["name"] for f in _decode(second.content)["layer1"]["features"])
    assert names == ["lisbon", "madrid", "rome"]
    _sql(server, "DELETE FROM quakes WHERE name = 'rome'")
    names = sorted(f["properties"]["name"] for f in _decode(_get(url).content)["layer1"]["features"])
    assert names == ["lisbon", "madrid"]


# -- named maps ------------------------------------------------------------------------------------


def _template(name: str, **overrides: Any) -> dict[str, Any]:
    template = {
        "version": "0.0.1",
        "name": name,
        "auth": {"method": "token", "valid_tokens": ["secret-token"]},
        "placeholders": {
            "color": {"type": "css_color", "default": "#00FF00"},
            "min_magnitude": {"type": "number", "default": 3},
            "who": {"type": "sql_literal", "default": "madrid"},
            "column": {"type": "sql_ident", "default": "name"},
        },
        "layergroup": {
            "version": "1.0.1",
            "layers": [
                {
                    "type": "cartodb",
                    "options": {
                        "cartocss_version": "2.1.1",
                        "cartocss": "#layer { marker-fill: <%= color %>; marker-width: 10; }",
                        "sql": "select cartodb_id, the_geom_webmercator, <%= column %> as label from quakes "
                        "where magnitude >= <%= min_magnitude %> or name = '<%= who %>'",
                    },
                }
            ],
        },
        "view": {"zoom": 3, "center": {"lng": -3.7, "lat": 40.4}},
    }
    return {**template, **overrides}


def test_named_maps_through_the_sdk(server: RunningServer, base: str, quakes: str) -> None:
    auth = APIKeyAuthClient(api_key=server.token, base_url=base)
    manager = NamedMapManager(auth)
    with pytest.raises(NotFoundException):
        manager.get("sdk_map")
    before = len(manager.all())
    named = manager.create(template=_template("sdk_map"))
    assert named.template_id == "sdk_map"
    assert len(manager.all()) == before + 1
    got = manager.get("sdk_map")
    assert got.layergroup["layers"][0]["options"]["cartocss"].startswith("#layer")
    assert got.auth["method"] == "token" and got.view["zoom"] == 3
    got.instantiate({"min_magnitude": 5}, "secret-token")
    assert got.layergroupid
    tile = _decode(_get(f"{base}api/v1/map/{got.layergroupid}/0/0/0/0.mvt").content)
    assert sorted(f["properties"]["label"] for f in tile["layer0"]["features"]) == ["madrid"]
    visitor = NamedMap(APIKeyAuthClient(api_key="default_public", base_url=base))
    visitor.template_id = "sdk_map"
    with pytest.raises(CartoException):
        visitor.instantiate({}, "wrong-token")
    visitor.instantiate({}, "secret-token")  # the template's token admits anyone
    assert visitor.layergroupid
    got.view = None
    got.save()
    assert got.view is None
    url = got.get_tile_url(0, 0, 0, layer_id="0", extension="mvt")
    assert url.endswith("?auth_token=secret-token")
    r = _get(url)
    assert r.status_code == 200, r.text
    assert len(_decode(r.content)["layer0"]["features"]) == 2  # the defaults: magnitude >= 3 or madrid
    assert _get(url.split("?")[0]).status_code == 403
    png = _get(f"{base}api/v1/map/static/named/sdk_map/120/80.png?auth_token=secret-token")
    assert png.status_code == 200 and Image.open(io.BytesIO(png.content)).size == (120, 80)
    got.delete()
    with pytest.raises(NotFoundException):
        manager.get("sdk_map")
    r = requests.delete(f"{base}api/v1/map/named/sdk_map", params={"api_key": server.token})
    assert r.status_code == 404 and r.json()["errors"]


def test_named_map_rules(server: RunningServer, base: str, quakes: str) -> None:
    def post(doc: dict[str, Any], token: str | None = None) -> requests.Response:
        return requests.post(f"{base}api/v1/map/named", json={**doc, "api_key": token or server.token})

    assert post(_template("rules")).status_code == 200
    r = post(_template("rules"))
    assert r.status_code == 400 and "already exists" in r.json()["errors"][0]
    assert post(_template("bad name!")).status_code == 400
    assert post(_template("v2", version="0.0.2")).status_code == 400
    assert post(_template("undeclared", placeholders={})).status_code == 400
    reader = server.token_for(bucket_permissions={"in.c-public": "read"})
    assert post(_template("not_master"), token=reader).status_code == 403
    r = requests.put(f"{base}api/v1/map/named/rules", json={**_template("other"), "api_key": server.token})
    assert r.status_code == 400
    r = requests.put(
        f"{base}api/v1/map/named/rules", json={**_template("rules", view=None), "api_key": server.token}
    )
    assert r.status_code == 200 and r.json() == {"template_id": "rules"}
    got = requests.get(f"{base}api/v1/map/named/rules", params={"api_key": server.token}).json()["template"]
    assert (
        set(got) == {"version", "name", "auth", "placeholders", "layergroup", "view"} and got["view"] is None
    )


@pytest.mark.parametrize(
    ("params", "why"),
    [
        ({"column": "name; drop table quakes"}, "sql_ident"),
        ({"column": 'name" from quakes; --'}, "sql_ident"),
        ({"min_magnitude": "3 or 1=1"}, "number"),
        ({"color": "red; marker-file: url(/etc/passwd)"}, "css_color"),
    ],
)
def test_placeholder_injection_is_refused(
    server: RunningServer, base: str, quakes: str, params: dict[str, Any], why: str
) -> None:
    requests.post(f"{base}api/v1/map/named", json={**_template("inject"), "api_key": server.token})
    r = requests.post(f"{base}api/v1/map/named/inject", params={"auth_token": "secret-token"}, json=params)
    assert r.status_code == 400 and why in r.json()["errors"][0], r.text
    assert len(_sql(server, "select * from quakes")["rows"]) >= len(QUAKES)


def test_an_sql_literal_stays_one_string(server: RunningServer, base: str, quakes: str) -> None:
    requests.post(f"{base}api/v1/map/named", json={**_template("literal"), "api_key": server.token})
    hostile = "x' or 1=1; drop table quakes; --"
    r = requests.post(
        f"{base}api/v1/map/named/literal",
        params={"auth_token": "secret-token"},
        json={"who": hostile, "min_magnitude": 99},
    )
    assert r.status_code == 200, r.text
    r = _get(f"{base}api/v1/map/{r.json()['layergroupid']}/0/0/0/0.mvt")
    assert r.status_code == 204  # nothing is named that, and nothing has magnitude >= 99
    assert len(_sql(server, "select * from quakes")["rows"]) >= len(QUAKES)


# -- the disk cache and expiry ---------------------------------------------------------------------


def test_tiles_from_disk_and_layergroups_that_expire(tmp_path: Any) -> None:
    from datetime import timedelta

    from sqlalchemy import update

    from entrepot.core.catalog import MapLayergroup
    from entrepot.core.clock import utcnow
    from entrepot.core.maps import layergroups
    from support.server import start_server

    server = start_server(tmp_path / "data", maps_tile_cache_bytes=0)  # no memory cache: disk only
    try:
        base = f"{server.url}/user/default/"
        _sql(server, "CREATE TABLE spots (name text, the_geom geometry(Geometry, 4326))")
        _sql(server, "SELECT CDB_CartodbfyTable('spots')")
        _sql(server, "INSERT INTO spots (name, the_geom) VALUES ('a', ST_SetSRID(ST_MakePoint(1, 1), 4326))")
        amap = _anonymous(base, _config("select * from spots"), token=server.token)
        url = amap.get_tile_url(0, 0, 0, layer_id="1", extension="mvt")
        first = _get(url)
        cached = list((tmp_path / "data" / "tile-cache").glob("*/*"))
        assert len(cached) == 1 and cached[0].read_bytes() == first.content
        cached[0].write_bytes(b"from the disk")  # what the next request answers: proof it reads the file
        again = _get(url)
        assert again.content == b"from the disk" and again.headers["etag"] == first.headers["etag"]
        _sql(server, "INSERT INTO spots (name, the_geom) VALUES ('b', ST_SetSRID(ST_MakePoint(2, 2), 4326))")
        after = _get(url)
        assert after.headers["etag"] != first.headers["etag"]
        assert sorted(f["properties"]["name"] for f in _decode(after.content)["layer1"]["features"]) == [
            "a",
            "b",
        ]
        assert len(list((tmp_path / "data" / "tile-cache").glob("*/*"))) == 2
        # unused for longer than maps_layergroup_ttl: the sweep deletes it, its tiles are gone
        with server.services.catalog.session() as s:
            s.execute(update(MapLayergroup).values(used_at=utcnow() - timedelta(days=31)))
        assert layergroups.expire(server.services) == 1
        gone = _get(url)
        assert gone.status_code == 404 and "nonexistent map configuration" in gone.json()["errors"][0]
    finally:
        server.stop()


def test_the_same_map_instantiated_at_once_is_one_layergroup(
    server: RunningServer, base: str, quakes: str
) -> None:
    from concurrent.futures import ThreadPoolExecutor

    config = {**_config("select * from quakes -- at once"), "api_key": server.token}
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: requests.post(f"{base}api/v1/map", json=config), range(16)))
    assert {r.status_code for r in answers} == {200}, [r.text for r in answers if r.status_code != 200]
    assert len({r.json()["layergroupid"].split(":")[0] for r in answers}) == 1
