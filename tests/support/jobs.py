"""Waiting for Keboola jobs in tests: the job detail's long poll (``?wait=S``), never a sleep loop.

``wait_kbc_job`` is for a test's own ``RunningServer``; ``poll_kbc_job`` takes a Storage API
URL, headers and ``verify=`` (a server in a subprocess, one behind TLS with its own CA).
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import requests

from support.server import RunningServer

FINISHED = ("success", "error")


class _Answer(Protocol):
    """A ``requests`` or ``httpx`` response."""

    status_code: int
    text: str

    @property
    def headers(self) -> Any: ...

    def json(self) -> Any: ...


Started = _Answer | dict[str, Any] | int | str


def _first_state(started: Started) -> dict[str, Any]:
    if isinstance(started, dict):
        return started
    if isinstance(started, int | str):
        return {"id": started, "status": "waiting"}
    assert started.status_code == 202, started.text
    content_type = started.headers.get("content-type", "")
    assert content_type.startswith("application/json"), content_type
    return started.json()


def poll_kbc_job(
    api_url: str,
    headers: dict[str, str],
    started: Started,
    *,
    verify: bool | str = True,
    timeout: float = 60,
    status: str | None = None,
) -> dict[str, Any]:
    """The finished job that ``started`` names: a 202 answer (must be JSON), a job, or its id.

    ``api_url`` is the Storage API root (``…/v2/storage``). Each request is answered when the
    job finishes or after ``wait`` seconds, so this returns as soon as the job is done. With
    ``status`` the finished job must have that status ("success", "error").
    """
    job = _first_state(started)
    deadline = time.monotonic() + timeout
    while job["status"] not in FINISHED:
        left = deadline - time.monotonic()
        assert left > 0, f"job {job['id']} did not finish in {timeout} s: {job}"
        r = requests.get(
            f"{api_url}/jobs/{job['id']}",
            headers=headers,
            params={"wait": min(5, max(1, int(left)))},
            timeout=30,
            verify=verify,
        )
        assert r.status_code == 200, r.text
        job = r.json()
    if status is not None:
        assert job["status"] == status, job
    return job


def wait_kbc_job(
    server: RunningServer,
    started: Started,
    *,
    token: str | None = None,
    timeout: float = 60,
    status: str | None = None,
) -> dict[str, Any]:
    """The finished Keboola job of ``server`` that ``started`` names (see ``poll_kbc_job``)."""
    return poll_kbc_job(
        f"{server.url}/v2/storage", server.headers(token), started, timeout=timeout, status=status
    )
