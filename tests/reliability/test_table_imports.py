"""Table imports under stress: concurrent loads into one table, and a worker killed mid-import."""

from __future__ import annotations

import threading
import time

import duckdb
import httpx
import pytest

from entrepot.client import Client
from support.server import Process, cli_env, free_port

pytestmark = pytest.mark.timeout(240)


def _wait(client: Client, job_id: int, timeout: float = 120) -> dict:  # type: ignore[type-arg]
    return client.jobs.wait(job_id, timeout=timeout)


def test_concurrent_incremental_imports_into_one_table_lose_nothing(server):
    client = Client(server.url, server.token)
    client.buckets.create("race")
    client.tables.create("in.c-race", "t", b"id,who\n0,seed\n", primary_key=["id"])
    errors: list[BaseException] = []

    def load(i: int) -> None:
        try:
            with Client(server.url, server.token) as c:
                rows = "".join(f"{i * 100 + k},w{i}\n" for k in range(1, 51))
                c.tables.load("in.c-race.t", ("id,who\n" + rows).encode(), incremental=True)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(1, 9)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert client.tables.get("in.c-race.t")["rowsCount"] == 1 + 8 * 50
    client.buckets.delete("in.c-race", force=True)


def test_worker_killed_mid_import_is_retried_and_the_table_ends_exactly_loaded(tmp_path):
    data = tmp_path / "data"
    source = tmp_path / "big.csv"
    rows = 3_000_000
    duckdb.sql(
        f"COPY (SELECT i AS id, 'name_' || i AS name, i % 1000 AS v FROM range({rows}) t(i)) "
        f"TO '{source}' (FORMAT csv, HEADER)"
    )
    env = cli_env(data, ENTREPOT_JOB_LEASE_SECONDS="2", ENTREPOT_JOB_HEARTBEAT_SECONDS="0.3")
    # The first worker pauses after writing every row, before COMMIT: the kill lands mid-transaction.
    paused_env = {**env, "ENTREPOT_FAILPOINTS": "tables.import.before_commit=pause(600)"}
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    serve = Process(["serve", "--port", str(port), "--no-workers"], env, tmp_path / "serve.log")
    workers: list[Process] = []
    try:
        serve.wait_http(url)
        lines = serve.output().splitlines()
        token = next(lines[i + 1].strip() for i, line in enumerate(lines) if "shown only this once" in line)
        client = Client(url, token, timeout=120)
        client.buckets.create("big")
        workers.append(Process(["worker", "--concurrency", "1"], paused_env, tmp_path / "w1.log"))
        client.tables.create("in.c-big", "t", b"id,name,v\nx,old,1\n", primary_key=["id"])
        file_id = client.files.upload(source, name="big.csv")["id"]
        r = httpx.post(
            f"{url}/v2/storage/tables/in.c-big.t/import-async",
            headers={"X-StorageApi-Token": token},
            data={"dataFileId": file_id, "incremental": "0"},
        )
        assert r.status_code == 202, r.text
        job_id = r.json()["id"]
        deadline = time.monotonic() + 120
        while "failpoint tables.import.before_commit reached" not in workers[0].output():
            assert time.monotonic() < deadline, workers[0].output()
            time.sleep(0.05)
        assert client.jobs.get(job_id)["status"] == "processing"
        workers[0].kill()
        assert client.tables.preview("in.c-big.t") == [{"id": "x", "name": "old", "v": "1"}]  # untouched

        workers.append(Process(["worker", "--concurrency", "1"], env, tmp_path / "w2.log"))
        done = _wait(client, job_id)
        assert done["attempt"] == 2
        table = client.tables.get("in.c-big.t")
        assert table["rowsCount"] == rows
        assert client.tables.preview("in.c-big.t", where={"id": ["x"]}) == []
        assert client.tables.preview("in.c-big.t", where={"id": ["2999999"]}) == [
            {"id": "2999999", "name": "name_2999999", "v": "999"}
        ]
    finally:
        for w in workers:
            w.stop()
        serve.stop()
