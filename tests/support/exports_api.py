"""Helpers for tests of the Export API (``/data-tools/api/v1``) against a running server.

Plain HTTP calls with a token, Keboola Storage set-up (buckets, tables, owner tokens, async
jobs) and export jobs: create, read and poll until they reach a wanted state.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import requests

from support.jobs import wait_kbc_job
from support.server import RunningServer

API = "/data-tools/api/v1"
TERMINAL = ("completed", "failed", "cancelled")


def call(
    server: RunningServer, method: str, path: str, token: str | None = None, **kw: Any
) -> requests.Response:
    """A request to the Export API; token None means the master token, "" means no token header."""
    headers = kw.pop("headers", {})
    if token != "":
        headers = {"X-StorageApi-Token": token or server.token, **headers}
    return requests.request(
        method, f"{server.url}{API}{path}", headers=headers, allow_redirects=False, timeout=30, **kw
    )


def kbc_wait(server: RunningServer, r: requests.Response) -> dict[str, Any]:
    """Wait for the Keboola async job that ``r`` (a 202) started; it must succeed."""
    job = wait_kbc_job(server, r)
    assert job["status"] == "success", job
    return job


def csv_text(header: Sequence[str], rows: Iterable[Sequence[str]]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


def create_bucket(server: RunningServer, name: str, *, exist_ok: bool = False) -> str:
    """Create the bucket ``in.c-<name>`` (unless it exists and ``exist_ok``); return its id."""
    bucket_id = f"in.c-{name}"
    if exist_ok and requests.get(f"{server.url}/v2/storage/buckets/{bucket_id}", headers=server.headers()).ok:
        return bucket_id
    r = requests.post(f"{server.url}/v2/storage/buckets", headers=server.headers(), data={"name": name})
    assert r.status_code == 201, r.text
    return bucket_id


def make_table(
    server: RunningServer,
    bucket_id: str,
    name: str,
    header: Sequence[str],
    rows: Iterable[Sequence[str]],
    *,
    primary_key: str | None = None,
) -> str:
    """Create a Storage table in an existing bucket from a header and row tuples; return its id."""
    data = {"name": name, "dataString": csv_text(header, rows)}
    if primary_key is not None:
        data["primaryKey"] = primary_key
    r = requests.post(
        f"{server.url}/v2/storage/buckets/{bucket_id}/tables-async", headers=server.headers(), data=data
    )
    kbc_wait(server, r)
    return f"{bucket_id}.{name}"


def make_token(server: RunningServer, owner: str, bucket: str) -> str:
    """A token of ``owner`` that can read ``bucket``."""
    r = requests.post(
        f"{server.url}/v2/storage/tokens",
        headers=server.headers(),
        json={"description": owner, "owner": owner, "bucketPermissions": {bucket: "read"}},
    )
    assert r.status_code == 201, r.text
    return r.json()["token"]


def datasource_id(server: RunningServer, table_id: str) -> str:
    """The id of the (single) datasource of a table."""
    r = call(server, "GET", "/datasources/", params={"search": table_id})
    assert r.status_code == 200, r.text
    found = [d for d in r.json()["data"]["datasources"] if d["table_id"] == table_id]
    assert len(found) == 1, r.json()
    return found[0]["id"]


def create_export(server: RunningServer, token: str | None, body: dict[str, Any]) -> dict[str, Any]:
    r = call(server, "POST", "/exports/", token, json=body)
    assert r.status_code == 201, r.text
    return r.json()["data"]


def get_job(server: RunningServer, token: str | None, job_id: str) -> dict[str, Any]:
    r = call(server, "GET", f"/exports/{job_id}/", token)
    assert r.status_code == 200, r.text
    return r.json()["data"]


def wait_job(
    server: RunningServer,
    token: str | None,
    job_id: str,
    until: tuple[str, ...] | Callable[[dict[str, Any]], Any] = TERMINAL,
    *,
    timeout: float = 30,
) -> dict[str, Any]:
    """Poll an export job until its status is one of ``until`` (or the predicate ``until`` holds)."""
    done = until if callable(until) else (lambda job: job["status"] in until)
    deadline = time.monotonic() + timeout
    while True:
        job = get_job(server, token, job_id)
        if done(job):
            return job
        assert time.monotonic() < deadline, f"job still {job['status']}: {job}"
        time.sleep(0.05)
