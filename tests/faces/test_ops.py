"""Operations: liveness, readiness, metrics, request ids, structured logs and the OpenAPI document."""

from __future__ import annotations

import json
import time

import httpx

from support.server import Process, cli_env, free_port


def test_health_answers_without_a_token(server):
    response = httpx.get(f"{server.url}/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_ready_checks_catalog_and_engine(server):
    response = httpx.get(f"{server.url}/ready")
    assert response.status_code == 200, response.text
    assert response.json() == {"status": "ok", "checks": {"catalog": "ok", "engine": "ok"}}


def test_every_response_carries_a_request_id_and_echoes_the_callers(server):
    generated = httpx.get(f"{server.url}/health").headers["x-request-id"]
    assert len(generated) >= 8
    echoed = httpx.get(f"{server.url}/health", headers={"X-Request-Id": "trace-abc-123"})
    assert echoed.headers["x-request-id"] == "trace-abc-123"
    error = httpx.get(f"{server.url}/v2/storage/tokens/verify", headers={"X-Request-Id": "trace-err"})
    assert error.status_code == 401
    assert error.headers["x-request-id"] == "trace-err"


def test_metrics_expose_request_latency_job_duration_and_queue_depth(server):
    job = server.services.jobs.submit(server.project_id, "system.noop", {})
    server.services.jobs.wait(job.id, timeout=10)
    httpx.get(f"{server.url}/v2/storage/tokens/verify", headers=server.headers())
    text = httpx.get(f"{server.url}/metrics").text
    assert (
        'entrepot_http_request_duration_seconds_count{method="GET",route="/v2/storage/tokens/verify"' in text
    )
    assert 'entrepot_job_duration_seconds_count{kind="system.noop",status="succeeded"}' in text
    assert 'entrepot_jobs{status="succeeded"}' in text
    assert 'entrepot_jobs{status="queued"} 0.0' in text


def test_openapi_has_one_tag_per_face_and_docs_are_served(server):
    spec = httpx.get(f"{server.url}/openapi.json").json()
    tags = {t["name"] for t in spec["tags"]}
    assert {"Keboola Storage API v2", "Operations"} <= tags
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            assert operation.get("tags"), f"{method.upper()} {path} has no tag"
    docs = httpx.get(f"{server.url}/docs")
    assert docs.status_code == 200 and "swagger" in docs.text.lower()


def test_json_logs_carry_request_id_project_token_and_job(tmp_path):
    port = free_port()
    env = cli_env(tmp_path / "data", ENTREPOT_LOG_FORMAT="json", ENTREPOT_LOG_LEVEL="info")
    proc = Process(["serve", "--port", str(port)], env, tmp_path / "serve.log")
    url = f"http://127.0.0.1:{port}"
    try:
        proc.wait_http(url)
        lines = proc.output().splitlines()
        token = next(lines[i + 1].strip() for i, line in enumerate(lines) if "shown only this once" in line)
        token_id = int(token.split("-")[1])
        response = httpx.get(
            f"{url}/v2/storage/tokens/verify", headers={"X-StorageApi-Token": token, "X-Request-Id": "log-me"}
        )
        assert response.status_code == 200
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            records = [json.loads(line) for line in proc.output().splitlines() if line.startswith("{")]
            mine = [r for r in records if r.get("request_id") == "log-me"]
            if mine:
                break
            time.sleep(0.1)
        assert mine, proc.output()
        assert mine[-1]["token"] == token_id
        assert mine[-1]["project"] == int(token.split("-")[0])
        assert "/v2/storage/tokens/verify" in mine[-1]["message"]
    finally:
        proc.stop()
