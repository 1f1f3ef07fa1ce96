"""Submit→success latency of a no-op job, and queue throughput, on SQLite and PostgreSQL.

For each catalog it measures, over N sequential jobs (one in flight at a time):

* ``in-process``: workers are threads of the submitting process (``entrepot serve``);
* ``worker process``: a separate ``entrepot worker`` process shares the catalog;

and, as the floor any catalog-backed queue pays, the same catalog's bare round trip of
the three write transactions a job needs (submit, claim, finish) without entrepot's queue
logic. It also reports the throughput of N jobs submitted at once to 2 worker threads.

    python bench/jobs_latency.py [--jobs 200] [--catalogs sqlite,postgres]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from sqlalchemy import text

from entrepot.config import Settings
from entrepot.core.jobs import SUCCEEDED, TERMINAL
from entrepot.core.projects import create_project
from entrepot.core.services import Services

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def summary(name: str, seconds: list[float]) -> str:
    ms = [s * 1000 for s in seconds]
    return f"| {name} | {pct(ms, 0.5):.1f} | {pct(ms, 0.99):.1f} | {statistics.mean(ms):.1f} |"


def in_process(services: Services, project_id: int, n: int) -> list[float]:
    out = []
    for _ in range(n):
        t0 = time.perf_counter()
        job = services.jobs.submit(project_id, "system.noop")
        done = services.jobs.wait(job.id, timeout=30)
        out.append(time.perf_counter() - t0)
        assert done.status == SUCCEEDED, done.error
    return out


def worker_process(services: Services, project_id: int, n: int, env: dict[str, str]) -> list[float]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "entrepot", "worker", "--concurrency", "2"], env=env, stderr=subprocess.DEVNULL
    )
    try:
        warm = services.jobs.submit(project_id, "system.noop")  # wait until the worker is up
        while services.jobs.get(warm.id).status not in TERMINAL:
            time.sleep(0.01)
        out = []
        for _ in range(n):
            t0 = time.perf_counter()
            job = services.jobs.submit(project_id, "system.noop")
            while (done := services.jobs.get(job.id)).status not in TERMINAL:
                time.sleep(0.001)
            out.append(time.perf_counter() - t0)
            assert done.status == SUCCEEDED, done.error
        return out
    finally:
        proc.terminate()
        proc.wait(15)


def floor(services: Services, project_id: int, n: int) -> list[float]:
    """Three bare write transactions on the jobs table: insert, claim-update, finish-update."""
    out = []
    catalog = services.catalog
    for _ in range(n):
        t0 = time.perf_counter()
        with catalog.session() as s:
            job_id = s.execute(
                text(
                    "INSERT INTO jobs (project_id, kind, params, status, progress, attempt, max_attempts, "
                    "cancel_requested, created_at, updated_at) VALUES (:p, 'bench.floor', '{}', 'queued', 0, 0, 1, "
                    "false, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP) RETURNING id"
                ),
                {"p": project_id},
            ).scalar_one()
        with catalog.session() as s:
            s.execute(
                text("UPDATE jobs SET status = 'running' WHERE id = :id AND status = 'queued'"),
                {"id": job_id},
            )
        with catalog.session() as s:
            s.execute(text("UPDATE jobs SET status = 'succeeded' WHERE id = :id"), {"id": job_id})
        out.append(time.perf_counter() - t0)
    return out


def throughput(services: Services, project_id: int, n: int) -> float:
    t0 = time.perf_counter()
    jobs = [services.jobs.submit(project_id, "system.noop") for _ in range(n)]
    for job in jobs:
        assert services.jobs.wait(job.id, timeout=60).status == SUCCEEDED
    return n / (time.perf_counter() - t0)


def run(catalog: str, catalog_url: str | None, n: int) -> list[str]:
    data = Path(tempfile.mkdtemp(prefix=f"bench-{catalog}-"))
    settings = Settings(data_dir=data, catalog_url=catalog_url, log_level="error")
    services = Services.open(settings)
    project_id = create_project(services.catalog, "bench").project.id
    rows = [summary(f"{catalog}: catalog floor (3 bare write transactions)", floor(services, project_id, n))]
    services.start_workers(2, name="bench")
    in_process(services, project_id, 10)  # warm up
    rows.append(summary(f"{catalog}: in-process workers", in_process(services, project_id, n)))
    rate = throughput(services, project_id, n)
    services.workers.stop()
    services.workers = None
    env = {k: v for k, v in os.environ.items() if not k.startswith("ENTREPOT_")}
    env.update(ENTREPOT_DATA_DIR=str(data), ENTREPOT_LOG_LEVEL="error")
    if catalog_url:
        env["ENTREPOT_CATALOG_URL"] = catalog_url
    rows.append(
        summary(f"{catalog}: `entrepot worker` process", worker_process(services, project_id, n, env))
    )
    rows.append(f"| {catalog}: throughput, {n} jobs at once, 2 threads | {rate:.0f} jobs/s | | |")
    services.close()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--catalogs", default="sqlite,postgres")
    args = parser.parse_args()
    rows = ["| no-op job, submit→success | p50 ms | p99 ms | mean ms |", "|---|---|---|---|"]
    cluster = None
    for catalog in args.catalogs.split(","):
        if catalog == "sqlite":
            rows += run("sqlite", None, args.jobs)
        elif catalog == "postgres":
            from support.postgres import PostgresCluster

            cluster = PostgresCluster(Path(tempfile.mkdtemp(prefix="bench-pg-")))
            ok, reason = cluster.available()
            if not ok:
                print(f"skipping PostgreSQL: {reason}", file=sys.stderr)
                continue
            cluster.start()
            try:
                rows += run("postgres", cluster.create_database("bench"), args.jobs)
            finally:
                cluster.stop()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
