"""Every Python example of the Keboola seed documents runs unmodified against entrepot.

The examples hard-code ``https://{stack_url}``: the server runs with ``--tls self-signed``,
``KEBOOLA_STACK_URL`` points at it and ``REQUESTS_CA_BUNDLE`` trusts its CA, exactly as a
user would set things up. The blocks run in document order in one namespace; where a seed
says "poll job until completion", the test polls, as the reader is told to.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator

import pytest
import requests

from compat.keboola_seeds import python_blocks
from support.jobs import poll_kbc_job
from support.server import RunningServer, start_server

SEED_000 = "000_3535be2d0304cb51.txt"
SEED_001 = "001_07d93a3a770611ab.txt"
CUSTOMERS = "id,name,city\n1,Ann,Prague\n2,Bob,Brno\n3,Cyd,Ostrava\n"


@pytest.fixture
def tls_server(tmp_path) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    running = start_server(tmp_path / "data", tls="self-signed")
    yield running
    running.stop()


@pytest.fixture
def seed_env(tls_server, tmp_path, monkeypatch) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The reader's environment, a bucket ``in.c-main`` and a table ``customers`` to export."""
    ca = tls_server.settings.data_dir / "tls" / "ca.pem"
    host = tls_server.url.removeprefix("https://")
    monkeypatch.setenv("KEBOOLA_STACK_URL", host)
    monkeypatch.setenv("KEBOOLA_TOKEN", tls_server.token)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    monkeypatch.chdir(tmp_path)
    api = f"https://{host}/v2/storage"
    headers = {"X-StorageApi-Token": tls_server.token}
    r = requests.post(f"{api}/buckets", headers=headers, data={"name": "main", "stage": "in"}, verify=str(ca))
    assert r.status_code == 201, r.text
    r = requests.post(
        f"{api}/buckets/in.c-main/tables-async",
        headers=headers,
        data={"name": "customers", "dataString": CUSTOMERS, "primaryKey": "id"},
        verify=str(ca),
    )
    poll_kbc_job(api, headers, r, verify=str(ca), status="success")
    return {"api": api, "headers": headers, "ca": str(ca)}


def _succeeded(env: dict, started: requests.Response | int) -> dict:  # type: ignore[type-arg]
    """The job a seed block started (its 202 or id), finished and successful."""
    return poll_kbc_job(env["api"], env["headers"], started, verify=env["ca"], status="success")


def _rows(env: dict, table_id: str) -> list[dict[str, str]]:  # type: ignore[type-arg]
    r = requests.get(f"{env['api']}/tables/{table_id}/data-preview", headers=env["headers"], verify=env["ca"])
    assert r.status_code == 200, r.text
    return sorted(csv.DictReader(io.StringIO(r.text)), key=lambda row: int(row["id"]))


def test_seed_000_examples_run_unmodified(seed_env):
    blocks = python_blocks(SEED_000)
    assert len(blocks) == 9
    ns: dict[str, object] = {"__name__": "seed000", "table_id": "in.c-main.customers"}

    exec(blocks[0], ns)  # list tables
    exec(blocks[1], ns)  # export customers, download the signed URL, read it back
    assert ns["data"] == [
        {"id": "1", "name": "Ann", "city": "Prague"},
        {"id": "2", "name": "Bob", "city": "Brno"},
        {"id": "3", "name": "Cyd", "city": "Ostrava"},
    ]

    exec(blocks[2], ns)  # create in.c-main.my_table with primary key id
    _succeeded(seed_env, ns["job_id"])
    exec(blocks[3], ns)  # full import: replaces the rows
    _succeeded(seed_env, ns["job_id"])
    assert [r["id"] for r in _rows(seed_env, "in.c-main.my_table")] == ["3", "4"]
    exec(blocks[4], ns)  # incremental: 1 updated... new key appended, 3 and 4 untouched
    _succeeded(seed_env, ns["job_id"])
    assert _rows(seed_env, "in.c-main.my_table") == [
        {"id": "1", "name": "foo_updated", "value": "150"},
        {"id": "3", "name": "baz", "value": "300"},
        {"id": "4", "name": "qux", "value": "400"},
        {"id": "5", "name": "new_row", "value": "500"},
    ]

    exec(blocks[5], ns)  # set the primary key through the table URL
    assert ns["response"].json()["primaryKey"] == ["id"]

    exec(blocks[6], ns)  # pagination helper
    paginate = ns["export_table_paginated"]
    assert sorted(r["id"] for r in paginate("in.c-main.my_table")) == ["1", "3", "4", "5"]
    assert sorted(r["id"] for r in paginate("in.c-main.my_table", chunk_size=3)) == ["1", "3", "4", "5"]

    exec(blocks[7], ns)  # export only what changed in the last 24 hours
    job = _succeeded(seed_env, ns["job_id"])
    assert job["results"]["file"]["id"]

    exec(blocks[8], ns)  # the complete example: export in.c-main.customers to customers.csv
    with open("customers.csv") as f:
        assert [row["name"] for row in csv.DictReader(f)] == ["Ann", "Bob", "Cyd"]


def test_seed_001_examples_run_unmodified(seed_env):
    blocks = python_blocks(SEED_001)
    assert len(blocks) == 5
    ns: dict[str, object] = {"__name__": "seed001", "table_id": "in.c-main.customers"}

    exec(blocks[0], ns)  # list tables
    exec(blocks[1], ns)  # export with GET, poll, download, parse
    assert ns["job"]["status"] == "success"
    assert [row["city"] for row in ns["data"]] == ["Prague", "Brno", "Ostrava"]

    exec(blocks[2], ns)  # create in.c-main.my_table
    _succeeded(seed_env, ns["job_id"])
    assert _rows(seed_env, "in.c-main.my_table") == [
        {"id": "1", "name": "foo", "value": "100"},
        {"id": "2", "name": "bar", "value": "200"},
    ]

    exec(blocks[3], ns)  # pagination helper
    assert [r["name"] for r in ns["export_table_paginated"]("in.c-main.customers", chunk_size=2)] == [
        "Ann",
        "Bob",
        "Cyd",
    ]

    exec(blocks[4], ns)  # changedSince export with GET
    _succeeded(seed_env, ns["response"])  # a JSON 202, then the finished job
