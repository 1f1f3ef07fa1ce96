"""Export API round trips: every format and option, every filter operator, read back with DuckDB.

Each export is downloaded and read back independently (DuckDB's readers, the bundled excel
extension for xlsx) and compared with the rows the test computes itself, in Python, from the
rows it loaded. Tables are Keboola Storage tables (all columns VARCHAR); a few values are set
to NULL directly in the lake because the CSV import never produces NULLs.
"""

from __future__ import annotations

import csv
import io
import json
import math
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit, urlunsplit

import pytest
import requests

from entrepot.core.engine.extensions import connect, load
from support.exports_api import (
    TERMINAL,
    call,
    create_bucket,
    create_export,
    csv_text,
    datasource_id,
    kbc_wait,
    make_table,
    wait_job,
)
from support.server import RunningServer

BUCKET = "in.c-fmt"

NAMES = ["Zoë", 'Ann "the" Great', "Smith, John", "multi\nline", "", "Ola", "ÅSA", "bob"]
CITIES = ["Praha", "Brno", "Ostrava", "Zürich", ""]


def _person(i: int) -> dict[str, str]:
    if i % 3 == 0:
        note = ""
    elif i % 7 == 0:
        note = f'note {i}, "quoted"\nsecond line'
    elif i % 11 == 0:
        note = "日本語 ✓"
    else:
        note = f"n{i}"
    return {
        "id": f"{i:04d}",
        "name": NAMES[i % len(NAMES)] if i % 5 else f"plain {i}",
        "city": CITIES[i % 5],
        "amount": str((i * 37) % 1000 - 200),
        "note": note,
        "category": "abcd"[i % 4],
    }


PEOPLE = [_person(i) for i in range(1, 301)]
COLUMNS = ["id", "name", "note", "city"]
FILTERS = {
    "columns": COLUMNS,
    "where_conditions": [
        {"column": "category", "operator": "in", "value": ["a", "c"]},
        {"column": "city", "operator": "!=", "value": "Brno"},
    ],
    "order_by": "id DESC",
    "limit": 60,
}


def _expected(columns: list[str] = COLUMNS) -> list[tuple[str, ...]]:
    rows = [p for p in PEOPLE if p["category"] in ("a", "c") and p["city"] != "Brno"]
    rows.sort(key=lambda p: p["id"], reverse=True)
    return [tuple(p[c] for c in columns) for p in rows[:60]]


# id, name, score, tag ("NULL" becomes a real NULL in the lake)
OPS = [
    ("01", "Zoë", "10", "x"),
    ("02", "zoe", "9.5", ""),
    ("03", "Alice", "100", "NULL"),
    ("04", "alice", "-3", "x"),
    ("05", "Bob", "0", "NULL"),
    ("06", "Anna", "10.0", "y"),
    ("07", "bob", "25", ""),
    ("08", 'Ann "the" Great', "11", "x"),
    ("09", "Smith, John", "2", "NULL"),
    ("10", "1' OR '1'='1", "7", "y"),
]
FORMULAS = ['=HYPERLINK("http://evil.example","click")', "-5", "=1+1", "@SUM(A1)", "plain", "3.14"]


def _escaped(value: str) -> str:
    return "'" + value if value[:1] in ("=", "@") else value


# -- helpers ---------------------------------------------------------------------------------------


def _import(server: RunningServer, table_id: str, header: list[str], rows: list[tuple[str, ...]]) -> None:
    r = requests.post(
        f"{server.url}/v2/storage/tables/{table_id}/import-async",
        headers=server.headers(),
        data={"dataString": csv_text(header, rows), "incremental": "1"},
    )
    kbc_wait(server, r)


def _make_table(server: RunningServer, name: str, header: list[str], rows: list[tuple[str, ...]]) -> str:
    return make_table(server, BUCKET, name, header, rows, primary_key="id")


def _finished(job: dict[str, Any]) -> bool:
    """Until the job ends its progress stays within 0..100."""
    if job["status"] in TERMINAL:
        return True
    assert 0 <= job["progress"] <= 100
    return False


def export(server: RunningServer, ds: str, fmt: str, **body: Any) -> tuple[dict[str, Any], bytes]:
    """Create an export, wait for it, download it; check progress, row_count and file_size."""
    job_id = create_export(server, None, {"datasource": ds, "format": fmt, **body})["id"]
    job = wait_job(server, None, job_id, _finished)
    assert job["status"] == "completed", job
    assert job["progress"] == 100
    download = call(server, "GET", f"/exports/{job_id}/download/")
    assert download.status_code == 200, download.text
    assert job["file_size"] == len(download.content)
    assert download.headers["Content-Type"] == job["content_type"]
    return job, download.content


def _duck(tmp_path: Path, content: bytes, suffix: str, query: str) -> list[tuple[Any, ...]]:
    path = tmp_path / f"export{suffix}"
    path.write_bytes(content)
    con = connect()
    try:
        if suffix == ".xlsx":
            load(con, "excel")
        return con.execute(query.format(path=str(path).replace("'", "''"))).fetchall()
    finally:
        con.close()


def _blank(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """CSV and xlsx cannot tell an empty string from NULL: read both as ''."""
    return [tuple("" if v is None else v for v in row) for row in rows]


# -- fixtures --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ds(server: RunningServer) -> dict[str, str]:
    create_bucket(server, "fmt")
    header = list(PEOPLE[0])
    people = _make_table(server, "people", header, [tuple(p.values()) for p in PEOPLE])
    ops = _make_table(server, "ops", ["id", "name", "score", "tag"], OPS)
    with server.services.engine.lake("default").cursor() as cur:
        cur.execute(f'UPDATE "{BUCKET}"."ops" SET tag = NULL WHERE tag = \'NULL\'')
    formulas = _make_table(server, "formulas", ["id", "val"], [(str(i), v) for i, v in enumerate(FORMULAS)])
    return {
        "people": datasource_id(server, people),
        "ops": datasource_id(server, ops),
        "formulas": datasource_id(server, formulas),
    }


# -- csv -------------------------------------------------------------------------------------------


def test_csv_default_round_trip(server, ds, tmp_path) -> None:  # type: ignore[no-untyped-def]
    job, content = export(server, ds["people"], "csv", filters=FILTERS)
    assert job["content_type"] == "text/csv; charset=utf-8"
    assert job["file_name"].endswith(".csv")
    assert content.split(b"\n", 1)[0].rstrip(b"\r") == b"id,name,note,city"
    rows = _duck(tmp_path, content, ".csv", "SELECT * FROM read_csv('{path}', all_varchar=true, header=true)")
    assert _blank(rows) == _expected()
    assert job["row_count"] == len(_expected()) == 60
    assert "Zoë".encode() in content


def test_csv_semicolon_delimiter(server, ds, tmp_path) -> None:  # type: ignore[no-untyped-def]
    job, content = export(server, ds["people"], "csv", filters=FILTERS, options={"delimiter": ";"})
    assert job["options"]["delimiter"] == ";"
    assert content.split(b"\n", 1)[0].rstrip(b"\r") == b"id;name;note;city"
    query = "SELECT * FROM read_csv('{path}', all_varchar=true, header=true, delim=';', quote='\"')"
    assert _blank(_duck(tmp_path, content, ".csv", query)) == _expected()


@pytest.mark.parametrize("encoding", ["utf-16", "latin-1"])
def test_csv_encodings(server, ds, tmp_path, encoding) -> None:  # type: ignore[no-untyped-def]
    columns = ["id", "name", "city"]  # latin-1 can hold Zoë, ÅSA and Zürich but not the notes
    filters = {**FILTERS, "columns": columns}
    job, content = export(server, ds["people"], "csv", filters=filters, options={"encoding": encoding})
    assert job["content_type"].startswith("text/csv")
    if encoding == "utf-16":
        assert b"\x00" in content  # really two bytes per ASCII character
        text = content.decode("utf-16" if content[:2] in (b"\xff\xfe", b"\xfe\xff") else "utf-16-le")
    else:
        assert "Zoë".encode("latin-1") in content and "Zoë".encode() not in content
        text = content.decode("latin-1")
    utf8 = tmp_path / "utf8.csv"
    utf8.write_text(text.lstrip("\ufeff"), encoding="utf-8")
    rows = _duck(tmp_path, utf8.read_bytes(), ".csv", "SELECT * FROM read_csv('{path}', all_varchar=true)")
    assert _blank(rows) == _expected(columns)


@pytest.mark.parametrize("where", ["options", "filters"])
def test_csv_without_headers(server, ds, tmp_path, where) -> None:  # type: ignore[no-untyped-def]
    filters = dict(FILTERS)
    options: dict[str, Any] = {}
    (options if where == "options" else filters)["include_headers"] = False
    job, content = export(server, ds["people"], "csv", filters=filters, options=options)
    assert not content.startswith(b"id,")
    query = "SELECT * FROM read_csv('{path}', all_varchar=true, header=false, names=['id', 'name', 'note', 'city'])"
    assert _blank(_duck(tmp_path, content, ".csv", query)) == _expected()
    assert job["row_count"] == 60


# -- json ------------------------------------------------------------------------------------------


def test_json_array_round_trip(server, ds, tmp_path) -> None:  # type: ignore[no-untyped-def]
    job, content = export(server, ds["people"], "json", filters=FILTERS)
    assert job["file_name"].endswith(".json") and job["content_type"].startswith("application/json")
    parsed = json.loads(content)
    assert isinstance(parsed, list)
    assert [list(obj) for obj in parsed] == [COLUMNS] * len(parsed)  # column order kept
    assert [tuple(obj.values()) for obj in parsed] == _expected()  # '' stays '', never null
    rows = _duck(tmp_path, content, ".json", "SELECT * FROM read_json('{path}', format='array')")
    assert rows == _expected()
    assert job["row_count"] == 60


def test_json_lines_round_trip(server, ds, tmp_path) -> None:  # type: ignore[no-untyped-def]
    job, content = export(server, ds["people"], "json", filters=FILTERS, options={"json_format": "lines"})
    lines = content.decode("utf-8").splitlines()
    assert len(lines) == 60
    assert [tuple(json.loads(line).values()) for line in lines] == _expected()
    query = "SELECT * FROM read_json('{path}', format='newline_delimited')"
    assert _duck(tmp_path, content, ".jsonl", query) == _expected()
    assert job["row_count"] == 60


# -- parquet ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("compression", "codec"), [(None, "SNAPPY"), ("zstd", "ZSTD"), ("none", "UNCOMPRESSED")]
)
def test_parquet_round_trip(server, ds, tmp_path, compression, codec) -> None:  # type: ignore[no-untyped-def]
    options = {"compression": compression} if compression else {}
    job, content = export(server, ds["people"], "parquet", filters=FILTERS, options=options)
    assert content[:4] == b"PAR1" and job["file_name"].endswith(".parquet")
    assert _duck(tmp_path, content, ".parquet", "SELECT * FROM read_parquet('{path}')") == _expected()
    names = _duck(
        tmp_path, content, ".parquet", "SELECT name FROM parquet_schema('{path}') WHERE num_children IS NULL"
    )
    assert [n for (n,) in names] == COLUMNS
    codecs = _duck(
        tmp_path, content, ".parquet", "SELECT DISTINCT compression FROM parquet_metadata('{path}')"
    )
    assert codecs == [(codec,)]
    assert job["row_count"] == 60


# -- excel -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("sheet", [None, "Data"])
def test_excel_round_trip(server, ds, tmp_path, sheet) -> None:  # type: ignore[no-untyped-def]
    options = {"sheet_name": sheet} if sheet else {}
    job, content = export(server, ds["people"], "excel", filters=FILTERS, options=options)
    assert content[:2] == b"PK" and job["file_name"].endswith(".xlsx")
    assert job["content_type"] == "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    query = f"SELECT * FROM read_xlsx('{{path}}', all_varchar=true, header=true, sheet='{sheet or 'Sheet1'}')"
    assert _blank(_duck(tmp_path, content, ".xlsx", query)) == _expected()
    header = _duck(
        tmp_path,
        content,
        ".xlsx",
        f"SELECT * FROM read_xlsx('{{path}}', all_varchar=true, header=false, sheet='{sheet or 'Sheet1'}') LIMIT 1",
    )
    assert header == [tuple(COLUMNS)]
    assert job["row_count"] == 60


# -- operators -------------------------------------------------------------------------------------


def _num(text: str) -> float:
    return float(text)


OPERATOR_CASES = [
    ({"column": "name", "operator": "=", "value": "Zoë"}, lambda r: r[1] == "Zoë"),
    ({"column": "name", "operator": "!=", "value": "Zoë"}, lambda r: r[1] != "Zoë"),
    ({"column": "name", "operator": "<>", "value": "Bob"}, lambda r: r[1] != "Bob"),
    ({"column": "score", "operator": ">", "value": 10}, lambda r: _num(r[2]) > 10),
    ({"column": "score", "operator": ">=", "value": 10}, lambda r: _num(r[2]) >= 10),
    ({"column": "score", "operator": "<", "value": 10}, lambda r: _num(r[2]) < 10),
    ({"column": "score", "operator": "<=", "value": 10}, lambda r: _num(r[2]) <= 10),
    (
        {"column": "name", "operator": "in", "value": ["Bob", "bob", "nobody"]},
        lambda r: r[1] in ("Bob", "bob"),
    ),
    ({"column": "name", "operator": "not_in", "value": ["Bob", "bob"]}, lambda r: r[1] not in ("Bob", "bob")),
    ({"column": "name", "operator": "like", "value": "A%"}, lambda r: r[1].startswith("A")),
    ({"column": "name", "operator": "ilike", "value": "a%"}, lambda r: r[1].lower().startswith("a")),
    # Keboola tables have no NULL: there is_null also matches '' (entrepot.core.exports.query).
    ({"column": "tag", "operator": "is_null"}, lambda r: r[3] in ("NULL", "")),
    ({"column": "tag", "operator": "is_not_null"}, lambda r: r[3] not in ("NULL", "")),
    ({"column": "score", "operator": "between", "value": [0, 10]}, lambda r: 0 <= _num(r[2]) <= 10),
    ({"column": "tag", "operator": "=", "value": ""}, lambda r: r[3] == ""),
]


@pytest.mark.parametrize(
    ("condition", "predicate"),
    OPERATOR_CASES,
    ids=[f"{c['operator']}-{c['column']}-{i}" for i, (c, _) in enumerate(OPERATOR_CASES)],
)
def test_every_operator_selects_exactly_the_right_rows(server, ds, condition, predicate) -> None:  # type: ignore[no-untyped-def]
    expected = [r[0] for r in OPS if predicate(r)]
    assert 0 < len(expected) < len(OPS)  # the case discriminates
    filters = {"columns": ["id"], "where_conditions": [condition], "order_by": "id"}
    job, content = export(server, ds["ops"], "json", filters=filters)
    assert [row["id"] for row in json.loads(content)] == expected, condition
    assert job["row_count"] == len(expected)


def test_nulls_come_back_as_null_in_json_and_parquet(server, ds, tmp_path) -> None:  # type: ignore[no-untyped-def]
    filters = {"columns": ["id", "tag"], "order_by": "id"}
    _, content = export(server, ds["ops"], "json", filters=filters)
    assert [(r["id"], r["tag"]) for r in json.loads(content)] == [
        (i, None if tag == "NULL" else tag) for i, _, _, tag in OPS
    ]
    _, content = export(server, ds["ops"], "parquet", filters=filters)
    rows = _duck(tmp_path, content, ".parquet", "SELECT * FROM read_parquet('{path}')")
    assert rows == [(i, None if tag == "NULL" else tag) for i, _, _, tag in OPS]


# -- group_by --------------------------------------------------------------------------------------


@pytest.mark.parametrize("group_by", ["category", ["category", "city"]])
def test_group_by_returns_the_group_columns_and_count(server, ds, group_by) -> None:  # type: ignore[no-untyped-def]
    keys = [group_by] if isinstance(group_by, str) else group_by
    filters = {
        "group_by": group_by,
        "where_conditions": [{"column": "category", "operator": "!=", "value": "d"}],
    }
    job, content = export(server, ds["people"], "json", filters=filters)
    rows = json.loads(content)
    assert all(list(row) == [*keys, "count"] for row in rows), rows[:3]
    got = {tuple(row[k] for k in keys): row["count"] for row in rows}
    expected = Counter(tuple(p[k] for k in keys) for p in PEOPLE if p["category"] != "d")
    assert got == dict(expected)
    assert len(rows) == len(expected) and job["row_count"] == len(expected)


# -- date_range ------------------------------------------------------------------------------------


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def test_date_range_on_the_row_change_time(server, ds) -> None:  # type: ignore[no-untyped-def]
    header = ["id", "v"]
    started = datetime.now(UTC)
    table_id = _make_table(server, "events", header, [(str(i), f"first {i}") for i in range(1, 6)])
    loaded = datetime.now(UTC)
    # The second batch must be loaded in a later second than anything of the first one.
    boundary = datetime.fromtimestamp(math.ceil(loaded.timestamp()), UTC)
    deadline = time.monotonic() + 5
    while datetime.now(UTC) < boundary + timedelta(seconds=1):  # wait for the wall clock, not a job
        assert time.monotonic() < deadline
        time.sleep(0.02)
    _import(server, table_id, header, [(str(i), f"second {i}") for i in range(6, 10)])
    finished = datetime.now(UTC)
    source = datasource_id(server, table_id)

    def ids(date_range: dict[str, str]) -> list[str]:
        filters = {"columns": ["id"], "date_range": date_range, "order_by": "id"}
        _, content = export(server, source, "json", filters=filters)
        return sorted((row["id"] for row in json.loads(content)), key=int)

    first, second = [str(i) for i in range(1, 6)], [str(i) for i in range(6, 10)]
    assert ids({"start": started.date().isoformat(), "end": _iso(boundary)}) == first
    assert (
        ids({"start": _iso(boundary), "end": finished.date().isoformat()}) == second
    )  # a date end is inclusive
    assert ids({"start": started.date().isoformat(), "end": finished.date().isoformat()}) == first + second
    assert ids({"start": "2000-01-01", "end": "2000-12-31"}) == []


# -- formula escaping ------------------------------------------------------------------------------


def _formula_rows(content: bytes, fmt: str, tmp_path: Path) -> list[str]:
    if fmt == "excel":
        query = "SELECT val FROM read_xlsx('{path}', all_varchar=true, header=true) ORDER BY CAST(id AS INT)"
        return [v for (v,) in _duck(tmp_path, content, ".xlsx", query)]
    return [
        row["val"]
        for row in sorted(csv.DictReader(io.StringIO(content.decode())), key=lambda r: int(r["id"]))
    ]


@pytest.mark.parametrize(
    ("fmt", "option", "escaped"),
    [("excel", None, True), ("excel", False, False), ("csv", None, False), ("csv", True, True)],
)
def test_escape_formulas(server, ds, tmp_path, fmt, option, escaped) -> None:  # type: ignore[no-untyped-def]
    options = {} if option is None else {"escape_formulas": option}
    _, content = export(server, ds["formulas"], fmt, options=options)
    expected = [_escaped(v) for v in FORMULAS] if escaped else FORMULAS
    got = _formula_rows(content, fmt, tmp_path)
    assert got == expected
    if escaped:
        assert '\'=HYPERLINK("http://evil.example","click")' in got and "-5" in got


# -- downloads -------------------------------------------------------------------------------------


def test_range_download(server, ds) -> None:  # type: ignore[no-untyped-def]
    job, full = export(server, ds["people"], "csv", filters=FILTERS)
    url = f"/exports/{job['id']}/download/"
    first = call(server, "GET", url, headers={"Range": "bytes=0-9"})
    assert first.status_code == 206, first.text
    assert first.content == full[:10]
    assert first.headers["Content-Range"] == f"bytes 0-9/{len(full)}"
    rest = call(server, "GET", url, headers={"Range": "bytes=10-"})
    assert rest.status_code == 206 and rest.content == full[10:]
    tail = call(server, "GET", url, headers={"Range": "bytes=-5"})
    assert tail.status_code == 206 and tail.content == full[-5:]


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()}
    query.update(changes)
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_signed_download_url_works_without_a_token_and_rejects_tampering(server, ds) -> None:  # type: ignore[no-untyped-def]
    job, full = export(server, ds["people"], "csv", filters=FILTERS)
    other, _ = export(server, ds["people"], "json", filters=FILTERS)
    url = job["download_url"]
    assert url.startswith(server.url)
    plain = requests.get(url, allow_redirects=False, timeout=30)
    assert plain.status_code == 200, plain.text
    assert plain.content == full
    signature = parse_qs(urlsplit(url).query)["signature"][0]
    flipped = signature[:-1] + ("0" if signature[-1] != "0" else "1")
    expires = parse_qs(urlsplit(url).query)["expires"][0]
    for bad in (
        _with_query(url, signature=flipped),
        _with_query(url, expires=str(int(expires) + 60)),
        url.replace(job["id"], other["id"]),
    ):
        r = requests.get(bad, allow_redirects=False, timeout=30)
        assert r.status_code == 403, (bad, r.status_code, r.text)
        assert r.json()["success"] is False
