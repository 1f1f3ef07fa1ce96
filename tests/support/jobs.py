"""Waiting for Keboola jobs in tests: the job detail's long poll (``?wait=S``), never a sleep loop."""

from __future__ import annotations

import time
from typing import Any

import requests

from support.server import RunningServer

FINISHED = ("success", "error")


def wait_kbc_job(
    server: RunningServer,
    started: requests.Response | dict[str, Any] | int,
    *,
    token: str | None = None,
    timeout: float = 60,
) -> dict[str, Any]:
    """The finished Keboola job that ``started`` names (a 202 answer, a job, or its id).

    The server answers each request when the job finishes or after ``wait`` seconds, so this
    returns as soon as the job is done.
    """
    if isinstance(started, requests.Response):
        assert started.status_code == 202, started.text
        job: dict[str, Any] = started.json()
    elif isinstance(started, dict):
        job = started
    else:
        job = {"id": started, "status": "waiting"}
    deadline = time.monotonic() + timeout
    while job["status"] not in FINISHED:
        left = deadline - time.monotonic()
        assert left > 0, f"job {job['id']} did not finish in {timeout} s: {job}"
        r = requests.get(
            f"{server.url}/v2/storage/jobs/{job['id']}",
            headers=server.headers(token),
            params={"wait": min(5, max(1, int(left)))},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        job = r.json()
    return job
