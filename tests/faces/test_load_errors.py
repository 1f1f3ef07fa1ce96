"""Errors of bad data that say what to fix: SQL COPY FROM and Keboola table imports.

A value that does not fit its column answers with the line (counted as the user counts: the
header is line 1), the column, the column's type and the value; a malformed row with DuckDB's
reason. Both faces word it through one formatter (``core.engine.csv.row_error``), values and
rows are clipped, so a 3 MB bad row never makes a 3 MB message, and the table is unchanged.
"""

from __future__ import annotations

import gzip
import itertools
import json
from typing import Any

import pytest
import requests

from support.jobs import wait_kbc_job
from support.server import RunningServer

_names = itertools.count(1)
MESSAGE_MAX = 1000  # characters: a whole error answer stays readable


def _url(server: RunningServer, suffix: str = "") -> str:
    return f"{server.url}/user/default/api/v2/sql{suffix}"


def _sql(server: RunningServer, q: str) -> dict[str, Any]:
    r = requests.post(_url(server), data={"q": q, "api_key": server.token}, timeout=120)
    assert r.status_code == 200, (r.status_code, r.text)
    return r.json()


def _copy(server: RunningServer, q: str, body: bytes, **headers: str) -> requests.Response:
    return requests.post(
        _url(server, "/copyfrom"),
        params={"q": q, "api_key": server.token},
        data=body,
        headers=headers,
        timeout=120,
    )


def _error(response: requests.Response) -> str:
    assert response.status_code == 400, (response.status_code, response.text[:2000])
    body = response.json()
    assert isinstance(body["error"], list) and body["error"], body
    return " ".join(body["error"])


def _table(server: RunningServer, columns: str = "id integer, name text", first: str = "1, 'one'") -> str:
    name = f"loaderr{next(_names)}"
    _sql(server, f"CREATE TABLE {name} ({columns})")
    _sql(server, f"INSERT INTO {name} VALUES ({first})")
    return name


def _rows(server: RunningServer, name: str) -> list[dict[str, Any]]:
    return _sql(server, f"SELECT * FROM {name} ORDER BY id")["rows"]


# -- SQL COPY FROM -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "body", "line"),
    [
        ("", b"2\ttwo\nnot-a-number\tthree\n", 2),
        ("WITH (FORMAT csv)", b"2,two\nnot-a-number,three\n", 2),
        ("WITH (FORMAT csv, HEADER true)", b"id,name\n2,two\nnot-a-number,three\n", 3),
    ],
    ids=["text", "csv", "csv-header"],
)
@pytest.mark.parametrize("gzipped", [False, True], ids=["plain", "gzip"])
def test_copy_bad_value_names_line_column_type_and_value(  # type: ignore[no-untyped-def]
    server, options, body, line, gzipped
) -> None:
    name = _table(server)
    before = _rows(server, name)
    headers = {"Content-Encoding": "gzip"} if gzipped else {}
    data = gzip.compress(body) if gzipped else body
    message = _error(_copy(server, f"COPY {name} (id, name) FROM STDIN {options}", data, **headers))
    assert f"line {line}:" in message, message
    assert 'column "id"' in message and "INTEGER" in message, message
    assert '"not-a-number"' in message, message
    assert _rows(server, name) == before


def test_copy_bad_value_in_a_reordered_column_list_names_the_real_column(server) -> None:  # type: ignore[no-untyped-def]
    name = _table(server)
    message = _error(_copy(server, f"COPY {name} (name, id) FROM STDIN", b"two\t2\nthree\tthree\n"))
    assert message == 'invalid COPY data on line 2: column "id" expects INTEGER, found "three"', message


def test_copy_bad_value_far_into_the_data_is_found_on_its_line(server) -> None:  # type: ignore[no-untyped-def]
    name = _table(server)
    rows = [f"{i},v{i}" for i in range(2, 50_002)]
    rows[31_337] = "oops,bad"
    body = ("id,name\n" + "\n".join(rows) + "\n").encode()
    message = _error(_copy(server, f"COPY {name} FROM STDIN WITH (FORMAT csv, HEADER true)", body))
    assert "line 31339:" in message and '"oops"' in message, message
    assert _rows(server, name) == [{"id": 1, "name": "one"}]


def test_copy_bad_values_of_other_types_are_described(server) -> None:  # type: ignore[no-untyped-def]
    name = _table(
        server,
        "id integer, at timestamptz, ok boolean, the_geom geometry(Geometry,4326)",
        "1, NULL, NULL, NULL",
    )
    good = b"2\t2024-01-01 10:00:00+00\tt\tPOINT(1 2)\n"
    cases = [
        (
            b"3\tyesterday-ish\tt\tPOINT(1 2)\n",
            '"at" expects TIMESTAMP WITH TIME ZONE, found "yesterday-ish"',
        ),
        (b"3\t2024-01-01\tmaybe\tPOINT(1 2)\n", '"ok" expects BOOLEAN, found "maybe"'),
        (b"3\t2024-01-01\tf\tPOINT(1 2\n", '"the_geom" expects GEOMETRY, found "POINT(1 2"'),
    ]
    for bad, fragment in cases:
        message = _error(_copy(server, f"COPY {name} (id, at, ok, the_geom) FROM STDIN", good + bad))
        assert message.startswith("invalid COPY data on line 2: column "), message
        assert fragment in message, message
    assert _sql(server, f"SELECT count(*) AS n FROM {name}")["rows"] == [{"n": 1}]


def test_copy_malformed_csv_row_says_what_is_wrong(server) -> None:  # type: ignore[no-untyped-def]
    name = _table(server)
    message = _error(_copy(server, f"COPY {name} FROM STDIN WITH (FORMAT csv)", b"2,two\n3,three,extra\n"))
    assert message == "invalid CSV on line 2: Expected Number of Columns: 2 Found: 3", message
    message = _error(_copy(server, f"COPY {name} FROM STDIN WITH (FORMAT csv)", b'2,two\n3,"three\n'))
    assert message.startswith("invalid CSV on line 2: ") and "unterminated quote" in message, message
    assert _rows(server, name) == [{"id": 1, "name": "one"}]


@pytest.mark.parametrize(
    ("options", "row"),
    [
        ("", b"x" * 1_500_000 + b"\tbig\n"),  # a long bad value: clipped in the message
        ("", b"9" * 3_000_000 + b"\tbig\n"),  # a row over DuckDB's line limit
        ("WITH (FORMAT csv)", b"x" * 1_500_000 + b",big\n"),
        ("WITH (FORMAT csv)", b"2," + b"y" * 1_500_000 + b",extra\n"),  # ragged, DuckDB quotes the row
    ],
    ids=["text-value", "text-row", "csv-value", "csv-ragged"],
)
def test_copy_error_for_a_huge_bad_row_stays_short(server, options, row) -> None:  # type: ignore[no-untyped-def]
    name = _table(server)
    first = b"2,two\n" if "csv" in options else b"2\ttwo\n"
    r = _copy(server, f"COPY {name} (id, name) FROM STDIN {options}", first + row)
    message = _error(r)
    assert "line 2:" in message, message[:2000]
    assert len(message) < MESSAGE_MAX, len(message)
    assert len(r.content) < 2 * MESSAGE_MAX, r.content[:3000]
    assert _rows(server, name) == [{"id": 1, "name": "one"}]


def test_copy_clipped_value_ends_with_an_ellipsis(server) -> None:  # type: ignore[no-untyped-def]
    name = _table(server)
    message = _error(_copy(server, f"COPY {name} (id, name) FROM STDIN", b"z" * 5000 + b"\tbig\n"))
    assert message == f'invalid COPY data on line 1: column "id" expects INTEGER, found "{"z" * 200}…"'


# -- Keboola table imports -----------------------------------------------------------------------


def _kbc(server: RunningServer) -> str:
    return f"{server.url}/v2/storage"


@pytest.fixture(scope="module")
def kbc_table(server: RunningServer) -> str:
    r = requests.post(f"{_kbc(server)}/buckets", headers=server.headers(), data={"name": "loaderr"})
    assert r.status_code == 201, r.text
    r = requests.post(
        f"{_kbc(server)}/buckets/in.c-loaderr/tables-async",
        headers=server.headers(),
        data={"name": "t", "dataString": "id,v\n1,a\n2,b\n"},
    )
    assert wait_kbc_job(server, r)["status"] == "success"
    return "in.c-loaderr.t"


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        (b"3,c,extra\n", "Expected Number of Columns: 2 Found: 3"),
        (b"3," + b"y" * 1_500_000 + b",extra\n", "Expected Number of Columns: 2 Found: 3"),
        (b"3," + b"y" * 3_000_000 + b"\n", "Maximum line size"),
    ],
    ids=["ragged", "huge-ragged", "over-line-limit"],
)
def test_import_error_and_its_details_are_capped(server, kbc_table, row, reason) -> None:  # type: ignore[no-untyped-def]
    r = requests.post(
        f"{_kbc(server)}/tables/{kbc_table}/import-async",
        headers={**server.headers(), "Content-Type": "text/csv"},
        data=b"id,v\n3,c\n" + row,
        timeout=120,
    )
    job = wait_kbc_job(server, r)
    assert job["status"] == "error", job
    error = job["error"]
    assert error["message"].startswith("invalid CSV on line 3: "), error["message"][:2000]
    assert reason in error["message"], error["message"]
    assert error["details"]["line"] == 3, error["details"]
    assert len(json.dumps(error)) < 2 * MESSAGE_MAX, json.dumps(error)[:3000]
    preview = requests.get(
        f"{_kbc(server)}/tables/{kbc_table}/data-preview", headers=server.headers(), timeout=30
    )
    assert preview.status_code == 200 and preview.text.count("\n") == 3, preview.text  # header + 2 rows
