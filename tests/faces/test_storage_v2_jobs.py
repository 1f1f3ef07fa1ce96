"""Job detail long poll (entrepot extension ``?wait=``)."""

from __future__ import annotations

import time

import requests


def test_job_detail_with_wait_answers_when_the_job_finishes(server):
    job = server.services.jobs.submit(server.project_id, "system.sleep", {"seconds": 0.6})
    started = time.monotonic()
    r = requests.get(f"{server.url}/v2/storage/jobs/{job.id}", headers=server.headers(), params={"wait": 20})
    elapsed = time.monotonic() - started
    assert r.status_code == 200
    assert r.json()["status"] == "success"
    assert 0.4 < elapsed < 10


def test_job_detail_wait_times_out_with_the_current_state(server):
    job = server.services.jobs.submit(server.project_id, "system.sleep", {"seconds": 5})
    try:
        r = requests.get(
            f"{server.url}/v2/storage/jobs/{job.id}", headers=server.headers(), params={"wait": 0.3}
        )
        assert r.status_code == 200 and r.json()["status"] in ("waiting", "processing")
    finally:
        server.services.jobs.cancel(job.id, server.project_id)


def test_job_detail_wait_must_be_a_bounded_number(server):
    job = server.services.jobs.submit(server.project_id, "system.noop", {})
    for bad in ("soon", "-1", "31"):
        r = requests.get(
            f"{server.url}/v2/storage/jobs/{job.id}", headers=server.headers(), params={"wait": bad}
        )
        assert r.status_code == 400 and "wait" in r.json()["error"]
