"""The CARTO SQL API on the wire (``faces/carto``), with plain HTTP clients.

Parameters merged from the query string, a form and a JSON body; credentials from Basic auth,
``api_key`` (query, form, JSON), Bearer and ``X-StorageApi-Token``; anonymous callers; the status
codes of the contract (401, 403, 404, 400, 413, 429); every output format (json, csv, geojson,
parquet, xlsx) and its headers; paging; field types; multi-statement ``q``; route variants; a
1M-row streamed CSV; and the two faces sharing one lake (SQL tables are Keboola tables and back).
"""

from __future__ import annotations

import csv
import io
import itertools
import re
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests

from entrepot.client import Client
from entrepot.core.engine import extensions
from entrepot.core.projects import create_project
from support.server import RunningServer, start_server

_names = itertools.count(1)


def _url(server: RunningServer, project: str = "default", version: str = "v2", suffix: str = "") -> str:
    return f"{server.url}/user/{project}/api/{version}/sql{suffix}"


def _get(
    server: RunningServer, q: str | None, token: str | None = "master", **params: Any
) -> requests.Response:
    if q is not None:
        params["q"] = q
    if token == "master":
        token = server.token
    if token is not None:
        params["api_key"] = token
    return requests.get(_url(server), params=params, timeout=120)


def _ok(response: requests.Response) -> dict[str, Any]:
    assert response.status_code == 200, (response.status_code, response.text)
    return response.json()


def _error(response: requests.Response, status: int | tuple[int, ...]) -> str:
    statuses = (status,) if isinstance(status, int) else status
    assert response.status_code in statuses, (response.status_code, response.text)
    body = response.json()
    assert isinstance(body, dict) and isinstance(body["error"], list) and body["error"], body
    return " ".join(str(m) for m in body["error"])


def _disposition(response: requests.Response) -> tuple[str, str | None]:
    """(type, filename) of Content-Disposition; the filename may be quoted or not."""
    value = response.headers["Content-Disposition"]
    kind, _, rest = value.partition(";")
    m = re.search(r'filename="?([^";]+)"?', rest)
    return kind.strip(), m.group(1) if m else None


def _sql(server: RunningServer, q: str) -> dict[str, Any]:
    return _ok(requests.post(_url(server), data={"q": q, "api_key": server.token}, timeout=120))


def _table(server: RunningServer, prefix: str = "t") -> str:
    name = f"{prefix}{next(_names)}"
    _sql(server, f"CREATE TABLE {name} (id integer, name text)")
    _sql(server, f"INSERT INTO {name} VALUES (1, 'one'), (2, 'two'), (3, 'three')")
    return name


@pytest.fixture(scope="module")
def places(server) -> str:  # type: ignore[no-untyped-def]
    """A cartodbfied table of two points."""
    _sql(server, "CREATE TABLE places (the_geom geometry(Geometry,4326), name text, visits integer)")
    _sql(server, "SELECT CDB_CartodbfyTable(current_schema, 'places')")
    _sql(
        server,
        "INSERT INTO places (the_geom, name, visits) VALUES "
        "('SRID=4326;POINT(2.1734035 41.3850639)', 'Barcelona, ES', 10), "
        "('SRID=4326;POINT(-3.70379 40.41678)', 'Madrid', 7)",
    )
    return "places"


@pytest.fixture(scope="module")
def other_project(server):  # type: ignore[no-untyped-def]
    return create_project(server.services.catalog, "carto-wire-other")


# --- parameters ------------------------------------------------------------------------------


def test_q_in_query_string_form_and_json(server) -> None:  # type: ignore[no-untyped-def]
    q = "select 1 as one"
    assert _ok(_get(server, q))["rows"] == [{"one": 1}]
    r = requests.post(_url(server), data={"q": q, "api_key": server.token})
    assert _ok(r)["rows"] == [{"one": 1}]
    r = requests.post(_url(server), json={"q": q, "api_key": server.token})
    assert _ok(r)["rows"] == [{"one": 1}]
    r = requests.post(_url(server), params={"q": q, "api_key": server.token})
    assert _ok(r)["rows"] == [{"one": 1}]
    r = requests.post(_url(server), files={"q": (None, q), "api_key": (None, server.token)})
    assert _ok(r)["rows"] == [{"one": 1}]


def test_body_wins_over_query_string(server) -> None:  # type: ignore[no-untyped-def]
    params = {"q": "select 1 as one", "api_key": server.token}
    r = requests.post(_url(server), params=params, data={"q": "select 2 as two"})
    assert _ok(r)["rows"] == [{"two": 2}]
    r = requests.post(_url(server), params=params, json={"q": "select 3 as three"})
    assert _ok(r)["rows"] == [{"three": 3}]


def test_parameters_merge_across_query_and_body(server) -> None:  # type: ignore[no-untyped-def]
    # format in the query string, q and api_key in the JSON body
    r = requests.post(
        _url(server), params={"format": "csv"}, json={"q": "select 1 as one", "api_key": server.token}
    )
    assert r.status_code == 200, r.text
    assert r.content.splitlines()[0] == b"one"
    # api_key in the query string, q in a form
    r = requests.post(_url(server), params={"api_key": server.token}, data={"q": "select 4 as four"})
    assert _ok(r)["rows"] == [{"four": 4}]


def test_unknown_parameters_are_ignored(server) -> None:  # type: ignore[no-untyped-def]
    r = _get(server, "select 1 as one", client="cps-1.11.3", cache_policy="persist", whatever="x")
    assert _ok(r)["rows"] == [{"one": 1}]


def test_missing_q(server) -> None:  # type: ignore[no-untyped-def]
    message = _error(_get(server, None), 400)
    assert "sql query" in message.lower()
    message = _error(requests.post(_url(server), data={"api_key": server.token}), 400)
    assert "sql query" in message.lower()
    message = _error(_get(server, ""), 400)
    assert "sql query" in message.lower()


# --- credentials -------------------------------------------------------------------------------


def test_api_key_from_every_place(server) -> None:  # type: ignore[no-untyped-def]
    name = _table(server, "private")  # private: only a token reads it
    q = f"select count(*) as n from {name}"
    expected = [{"n": 3}]
    url = _url(server)
    token = server.token
    assert _ok(requests.get(url, params={"q": q}, auth=("default", token)))["rows"] == expected
    assert _ok(requests.get(url, params={"q": q, "api_key": token}))["rows"] == expected
    assert _ok(requests.post(url, data={"q": q, "api_key": token}))["rows"] == expected
    assert _ok(requests.post(url, json={"q": q, "api_key": token}))["rows"] == expected
    headers = {"Authorization": f"Bearer {token}"}
    assert _ok(requests.get(url, params={"q": q}, headers=headers))["rows"] == expected
    headers = {"X-StorageApi-Token": token}
    assert _ok(requests.get(url, params={"q": q}, headers=headers))["rows"] == expected
    # anonymous cannot
    r = requests.get(url, params={"q": q})
    assert r.status_code in (400, 401, 403), r.text


def test_default_public_is_anonymous(server) -> None:  # type: ignore[no-untyped-def]
    name = _table(server, "private")
    assert _ok(_get(server, "select 1 as one", token="default_public"))["rows"] == [{"one": 1}]
    assert _ok(_get(server, "select 1 as one", token=None))["rows"] == [{"one": 1}]
    for token in ("default_public", None):
        r = _get(server, f"select * from {name}", token=token)
        assert r.status_code in (400, 401, 403), r.text
        assert "three" not in r.text
        r = _get(server, f"insert into {name} values (9, 'anonymous')", token=token)
        assert r.status_code in (401, 403), r.text
    assert _sql(server, f"select count(*) as n from {name}")["rows"] == [{"n": 3}]


def test_unknown_key_is_401(server) -> None:  # type: ignore[no-untyped-def]
    for key in (
        "not-a-token",
        "1-999999-" + "a" * 43,
        server.token[:-1] + ("b" if server.token[-1] != "b" else "c"),
    ):
        r = _get(server, "select 1 as one", token=key)
        assert r.status_code == 401, r.text
        assert r.json()["error"] == ["Unauthorized"]  # context/detail/hint may accompany it
    r = requests.get(_url(server), params={"q": "select 1"}, headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"] == ["Unauthorized"]


def test_token_of_another_project_is_403(server, other_project) -> None:  # type: ignore[no-untyped-def]
    name = _table(server, "mine")
    r = _get(server, f"select * from {name}", token=other_project.master.token)
    message = _error(r, 403)
    assert "permission denied" in message
    assert "three" not in r.text
    # and it works on its own project's path
    r = requests.get(
        _url(server, project="carto-wire-other"),
        params={"q": "select 1 as one", "api_key": other_project.master.token},
    )
    assert _ok(r)["rows"] == [{"one": 1}]


def test_basic_auth_user_other_than_the_path_is_403(server, other_project) -> None:  # type: ignore[no-untyped-def]
    r = requests.get(_url(server), params={"q": "select 1 as one"}, auth=("carto-wire-other", server.token))
    assert _error(r, 403)


def test_unknown_project_is_404(server) -> None:  # type: ignore[no-untyped-def]
    r = requests.get(
        _url(server, project="no-such-project"), params={"q": "select 1", "api_key": server.token}
    )
    message = _error(r, 404)
    assert "no-such-project" in message
    r = requests.get(_url(server, project="no-such-project"), params={"q": "select 1"})
    _error(r, 404)


# --- results -----------------------------------------------------------------------------------


def test_json_result_shape(server, places) -> None:  # type: ignore[no-untyped-def]
    r = _get(server, f"select cartodb_id, name, visits, the_geom from {places} order by cartodb_id")
    assert r.headers["Content-Type"].startswith("application/json")
    body = _ok(r)
    assert set(body) >= {"rows", "time", "fields", "total_rows"}
    assert isinstance(body["time"], float)
    assert body["total_rows"] == 2
    assert [row["name"] for row in body["rows"]] == ["Barcelona, ES", "Madrid"]
    assert body["rows"][0]["the_geom"].upper().startswith("0101000020E6100000")
    assert body["fields"]["name"] == {"type": "string", "pgtype": "text"}
    assert body["fields"]["the_geom"] == {"type": "geometry", "wkbtype": "Geometry", "dims": 2, "srid": 4326}


def test_field_types(server) -> None:  # type: ignore[no-untyped-def]
    body = _ok(
        _get(
            server,
            "select 1::integer as i, 2::bigint as big, 1.5::float8 as f, 2.25::numeric as num, "
            "'a'::text as s, 'b'::varchar as v, true as b, date '2024-01-02' as d, "
            "timestamp '2024-01-02 03:04:05' as ts, 'SRID=4326;POINT(1 2)'::geometry as g, "
            "ST_Transform('SRID=4326;POINT(1 2)'::geometry, 3857) as merc, "
            "null::integer as nothing",
        )
    )
    fields = body["fields"]
    assert {k: v["type"] for k, v in fields.items()} == {
        "i": "number",
        "big": "number",
        "f": "number",
        "num": "number",
        "s": "string",
        "v": "string",
        "b": "boolean",
        "d": "date",
        "ts": "date",
        "g": "geometry",
        "merc": "geometry",
        "nothing": "number",
    }
    assert fields["i"]["pgtype"] == "int4"
    assert fields["big"]["pgtype"] == "int8"
    assert fields["b"]["pgtype"] == "bool"
    assert fields["g"]["srid"] == 4326 and fields["merc"]["srid"] == 3857
    row = body["rows"][0]
    assert row["i"] == 1 and row["big"] == 2 and row["f"] == 1.5 and row["num"] == 2.25
    assert row["s"] == "a" and row["b"] is True and row["nothing"] is None
    assert row["d"].startswith("2024-01-02") and row["ts"].startswith("2024-01-02")
    assert row["g"].upper().startswith("0101000020E6100000")
    assert row["merc"].upper().startswith("0101000020110F0000")


def test_total_rows_of_dml_and_ddl(server) -> None:  # type: ignore[no-untyped-def]
    name = f"counted{next(_names)}"
    assert _sql(server, f"create table {name} (n integer)")["total_rows"] == 0
    assert _sql(server, f"insert into {name} values (1), (2), (3)")["total_rows"] == 3
    assert _sql(server, f"update {name} set n = n + 10 where n > 1")["total_rows"] == 2
    assert _sql(server, f"delete from {name} where n = 1")["total_rows"] == 1
    assert _sql(server, f"select * from {name} order by n")["rows"] == [{"n": 12}, {"n": 13}]


def test_skipfields(server, places) -> None:  # type: ignore[no-untyped-def]
    body = _ok(_get(server, f"select * from {places}", skipfields="the_geom_webmercator,visits"))
    assert "the_geom_webmercator" not in body["fields"] and "visits" not in body["fields"]
    assert all(set(row) == {"cartodb_id", "the_geom", "name"} for row in body["rows"])


def test_csv_output(server, places) -> None:  # type: ignore[no-untyped-def]
    r = _get(
        server, f"select cartodb_id, name, visits, the_geom from {places} order by cartodb_id", format="csv"
    )
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/csv")
    assert _disposition(r) == ("attachment", "cartodb-query.csv")
    text = r.content.decode()
    assert text.endswith("\r\n")
    assert text.count("\r\n") == 3 and "\n" not in text.replace("\r\n", "")  # CRLF line ends
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["the_geom", "cartodb_id", "name", "visits"]  # the_geom first
    assert rows[1][0].upper().startswith("0101000020E6100000")
    assert rows[1][1:] == ["1", "Barcelona, ES", "10"]
    assert '"Barcelona, ES"' in text and '"Madrid"' not in text  # quoting only when needed


def test_geojson_output(server, places) -> None:  # type: ignore[no-untyped-def]
    r = _get(server, f"select * from {places} order by cartodb_id", format="geojson")
    assert r.status_code == 200, r.text
    assert _disposition(r) == ("attachment", "cartodb-query.geojson")
    body = r.json()
    assert body["type"] == "FeatureCollection"
    assert [f["type"] for f in body["features"]] == ["Feature", "Feature"]
    first = body["features"][0]
    assert first["geometry"] == {"type": "Point", "coordinates": [2.173404, 41.385064]}  # dp=6
    assert first["properties"] == {"cartodb_id": 1, "name": "Barcelona, ES", "visits": 10}
    rounded = _ok(_get(server, f"select * from {places} order by cartodb_id", format="geojson", dp="2"))
    assert rounded["features"][0]["geometry"]["coordinates"] == [2.17, 41.39]


def test_geojson_null_geometry_and_missing_the_geom(server) -> None:  # type: ignore[no-untyped-def]
    body = _ok(_get(server, "select null::geometry as the_geom, 1 as n", format="geojson"))
    assert body["features"] == [{"type": "Feature", "geometry": None, "properties": {"n": 1}}]
    r = _get(server, "select 1 as n", format="geojson")
    assert "the_geom" in _error(r, 400)


def _duckdb_read(tmp_path: Path, content: bytes, suffix: str) -> list[tuple[Any, ...]]:
    path = tmp_path / f"result{suffix}"
    path.write_bytes(content)
    conn = extensions.connect()
    try:
        if suffix == ".parquet":
            return conn.sql(f"select * from read_parquet('{path}') order by 1").fetchall()
        extensions.load(conn, "excel")
        return conn.sql(f"select * from read_xlsx('{path}') order by 1").fetchall()
    finally:
        conn.close()


def test_parquet_output(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    name = _table(server, "pq")
    r = _get(server, f"select id, name from {name}", format="parquet", filename="mine")
    assert r.status_code == 200, r.text
    assert _disposition(r) == ("attachment", "mine.parquet")
    assert r.content[:4] == b"PAR1"
    assert _duckdb_read(tmp_path, r.content, ".parquet") == [(1, "one"), (2, "two"), (3, "three")]
    # duckdb's own reader agrees
    path = tmp_path / "again.parquet"
    path.write_bytes(r.content)
    assert duckdb.sql(f"select count(*) from read_parquet('{path}')").fetchone() == (3,)


def test_xlsx_output(server, tmp_path) -> None:  # type: ignore[no-untyped-def]
    name = _table(server, "xl")
    r = _get(server, f"select id, name from {name}", format="xlsx")
    assert r.status_code == 200, r.text
    assert _disposition(r) == ("attachment", "cartodb-query.xlsx")
    assert r.content[:2] == b"PK"
    rows = _duckdb_read(tmp_path, r.content, ".xlsx")
    assert [(int(a), b) for a, b in rows] == [(1, "one"), (2, "two"), (3, "three")]


@pytest.mark.parametrize("fmt", ["kml", "shp", "gpkg", "svg", "topojson", "nonsense"])
def test_unsupported_format(server, fmt) -> None:  # type: ignore[no-untyped-def]
    message = _error(_get(server, "select 1 as one", format=fmt), 400)
    assert f"Invalid format: {fmt}" in message
    for supported in ("json", "csv", "geojson", "parquet", "xlsx"):
        assert supported in message


def test_content_disposition(server) -> None:  # type: ignore[no-untyped-def]
    q = "select 1 as one"
    assert _get(server, q).headers["Content-Disposition"].startswith("inline")
    r = _get(server, q, format="json")
    assert _disposition(r) == ("attachment", "cartodb-query.json")
    r = _get(server, q, filename="report")
    assert _disposition(r) == ("attachment", "report.json")
    r = _get(server, q, format="csv", filename="report")
    assert _disposition(r) == ("attachment", "report.csv")


def test_paging(server) -> None:  # type: ignore[no-untyped-def]
    q = "select i from generate_series(1, 25) i order by i"
    body = _ok(_get(server, q, rows_per_page="10", page="1"))  # 0-based pages
    assert [r["i"] for r in body["rows"]] == list(range(11, 21))
    body = _ok(_get(server, q, rows_per_page="10", page="2"))
    assert [r["i"] for r in body["rows"]] == list(range(21, 26))
    body = _ok(_get(server, q, rows_per_page="10", page="0"))
    assert [r["i"] for r in body["rows"]] == list(range(1, 11))
    body = _ok(_get(server, q, rows_per_page="10", page="7"))
    assert body["rows"] == []


def test_multi_statement_q(server) -> None:  # type: ignore[no-untyped-def]
    name = f"multi{next(_names)}"
    body = _sql(
        server,
        f"create table {name} (n integer); insert into {name} values (1), (2); "
        f"select count(*) as n from {name};",
    )
    assert body["rows"] == [{"n": 2}]
    assert _sql(server, f"select sum(n) as s from {name}")["rows"] == [{"s": 3}]


def test_multi_statement_q_is_one_transaction(server) -> None:  # type: ignore[no-untyped-def]
    name = _table(server, "atomic")
    r = requests.post(
        _url(server),
        data={
            "q": f"insert into {name} values (4, 'four'); select * from no_such_table_here",
            "api_key": server.token,
        },
    )
    assert "does not exist" in _error(r, 400)
    assert _sql(server, f"select count(*) as n from {name}")["rows"] == [{"n": 3}]


def test_sql_error_is_400_json(server) -> None:  # type: ignore[no-untyped-def]
    message = _error(_get(server, "select * from non_existing_dataset"), 400)
    assert 'relation "non_existing_dataset" does not exist' in message
    message = _error(_get(server, "selec 1"), 400)
    assert "syntax" in message.lower()


# --- routes ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "path",
    [
        "/user/default/api/v2/sql",
        "/user/default/api/v2/sql/",
        "/user/default/api/v1/sql",
        "/user/default/api/v1/sql/",
        "/u/default/api/v2/sql",
        "/u/default/api/v2/sql/",
        "/api/v2/sql",
        "/api/v2/sql/",
        "/api/v1/sql",
    ],
)
def test_route_variants(server, path) -> None:  # type: ignore[no-untyped-def]
    params = {"q": "select 1 as one", "api_key": server.token}
    r = requests.get(f"{server.url}{path}", params=params, allow_redirects=False)
    assert _ok(r)["rows"] == [{"one": 1}]
    r = requests.post(f"{server.url}{path}", data=params, allow_redirects=False)
    assert _ok(r)["rows"] == [{"one": 1}]


def test_copy_routes_with_trailing_slash(server) -> None:  # type: ignore[no-untyped-def]
    name = _table(server, "copyroutes")
    for suffix in ("/copyto", "/copyto/"):
        r = requests.get(
            _url(server, suffix=suffix),
            params={
                "q": f"COPY (select id, name from {name} order by id) TO STDOUT",
                "api_key": server.token,
            },
            allow_redirects=False,
        )
        assert r.status_code == 200, r.text
        assert r.content == b"1\tone\n2\ttwo\n3\tthree\n"
        assert r.headers["Content-Disposition"].startswith("attachment; filename=")
    for suffix in ("/copyfrom", "/copyfrom/"):
        r = requests.post(
            _url(server, suffix=suffix),
            params={"q": f"COPY {name} (id, name) FROM STDIN", "api_key": server.token},
            data=b"7\tseven\n",
            allow_redirects=False,
        )
        assert _ok(r)["total_rows"] == 1
    assert _sql(server, f"select count(*) as n from {name}")["rows"] == [{"n": 5}]


# --- limits ------------------------------------------------------------------------------------


def test_statement_timeout_is_429(tmp_path) -> None:  # type: ignore[no-untyped-def]
    limited = start_server(tmp_path / "data", sql_time_limit=0.5)
    try:
        started = time.monotonic()
        r = _get(
            limited, "with recursive t(n) as (select 1 union all select n + 1 from t) select count(*) from t"
        )
        elapsed = time.monotonic() - started
        _error(r, 429)
        assert elapsed < 15, elapsed
        assert "Retry-After" not in r.headers  # a timeout, not a rate limit (the SDK would crash)
        assert _ok(_get(limited, "select 1 as one"))["rows"] == [{"one": 1}]
    finally:
        limited.stop()


def test_large_sync_result_is_refused(tmp_path) -> None:  # type: ignore[no-untyped-def]
    limited = start_server(tmp_path / "data", sql_max_rows=1000)
    try:
        q = "select i, repeat('x', 10) as pad from generate_series(1, 5000) i"
        for fmt in ("json", "geojson"):
            r = _get(
                limited,
                q if fmt == "json" else f"select null::geometry as the_geom, * from ({q}) s",
                format=fmt,
            )
            assert 400 <= r.status_code < 500 and r.status_code != 429, (r.status_code, r.text[:500])
            message = _error(r, r.status_code)
            assert "COPY TO" in message or "batch" in message.lower(), message
        # at the cap it still answers
        assert len(_ok(_get(limited, "select i from generate_series(1, 1000) i"))["rows"]) == 1000
        # the same rows stream fine as CSV and through COPY TO
        r = _get(limited, q, format="csv")
        assert r.status_code == 200 and r.content.count(b"\n") == 5001
        r = requests.get(
            _url(limited, suffix="/copyto"), params={"q": f"COPY ({q}) TO STDOUT", "api_key": limited.token}
        )
        assert r.status_code == 200 and r.content.count(b"\n") == 5000
    finally:
        limited.stop()


def test_one_million_rows_stream_as_csv(server) -> None:  # type: ignore[no-untyped-def]
    r = requests.get(
        _url(server),
        params={"q": "select i from generate_series(1, 1000000) i", "format": "csv", "api_key": server.token},
        stream=True,
        timeout=300,
    )
    assert r.status_code == 200
    lines = 0
    total = 0
    rest = b""
    for chunk in r.iter_content(1 << 16):
        parts = (rest + chunk).split(b"\r\n")
        rest = parts.pop()
        for line in parts:
            lines += 1
            if lines > 1:
                total += int(line)
    assert rest == b""  # ends with CRLF
    assert lines == 1_000_001  # header + rows
    assert total == 1_000_000 * 1_000_001 // 2


# --- one lake, two faces -------------------------------------------------------------------------


def test_sql_tables_are_keboola_tables(server) -> None:  # type: ignore[no-untyped-def]
    name = f"kbc_visible{next(_names)}"
    _sql(server, f"create table {name} (id integer, label text)")
    _sql(server, f"insert into {name} values (1, 'a'), (2, 'b')")
    r = requests.get(f"{server.url}/v2/storage/buckets/in.c-public/tables", headers=server.headers())
    assert r.status_code == 200, r.text
    tables = {t["name"]: t for t in r.json()}
    assert name in tables
    assert tables[name]["id"] == f"in.c-public.{name}"
    detail = requests.get(
        f"{server.url}/v2/storage/tables/in.c-public.{name}", headers=server.headers()
    ).json()
    assert detail["columns"] == ["id", "label"]
    assert detail["rowsCount"] == 2
    # dropped by SQL: gone from the Keboola face too
    _sql(server, f"drop table {name}")
    r = requests.get(f"{server.url}/v2/storage/buckets/in.c-public/tables", headers=server.headers())
    assert name not in {t["name"] for t in r.json()}


def test_keboola_tables_are_sql_tables(server) -> None:  # type: ignore[no-untyped-def]
    with Client(server.url, server.token) as client:
        client.buckets.create("main")
        client.tables.create("in.c-main", "t", b"id,name\n1,a\n2,b\n")
    body = _sql(server, 'select id, name from "in.c-main".t order by id')
    assert body["rows"] == [{"id": "1", "name": "a"}, {"id": "2", "name": "b"}]
    body = _sql(server, 'select name from "in.c-main"."t" where id = \'2\'')
    assert body["rows"] == [{"name": "b"}]
    # and writes by SQL show in the Keboola face
    _sql(server, "insert into \"in.c-main\".t values ('3', 'c')")
    detail = requests.get(f"{server.url}/v2/storage/tables/in.c-main.t", headers=server.headers()).json()
    assert detail["rowsCount"] == 3


def test_keboola_internal_timestamp_column_is_hidden(server) -> None:  # type: ignore[no-untyped-def]
    """Keboola's hidden ``_timestamp`` column is not one of the table's columns: ``select *`` omits it."""
    with Client(server.url, server.token) as client:
        client.buckets.create("stamps")
        client.tables.create("in.c-stamps", "t", b"id,name\n1,a\n")
    body = _sql(server, 'select * from "in.c-stamps".t')
    assert body["rows"] == [{"id": "1", "name": "a"}]
    assert set(body["fields"]) == {"id", "name"}
