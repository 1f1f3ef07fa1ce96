"""``entrepot serve --s3-port``: the dedicated S3 listener of a real server process."""

from __future__ import annotations

import re

import boto3
import httpx
from botocore import UNSIGNED
from botocore.config import Config

from support.server import Process, cli_env, free_port, printed_token


def test_serve_opens_the_s3_listener_where_unsigned_requests_are_s3(tmp_path):
    port = free_port()
    proc = Process(
        ["serve", "--port", str(port), "--s3-port", "0"], cli_env(tmp_path / "data"), tmp_path / "serve.log"
    )
    try:
        url = f"http://127.0.0.1:{port}"
        proc.wait_http(url)
        output = proc.output()
        found = re.search(r"S3 listener at (http://127\.0\.0\.1:(\d+))", output)
        assert found, output
        s3_url, s3_port = found.group(1), int(found.group(2))
        assert s3_port not in (0, port)
        token = printed_token(output)
        stored = httpx.put(
            f"{url}/spaces/v1/default/public/objects/hello.txt",
            content=b"hi there",
            headers={"X-StorageApi-Token": token},
        )
        assert stored.status_code == 201
        anonymous = boto3.client(
            "s3", endpoint_url=s3_url, region_name="us-east-1", config=Config(signature_version=UNSIGNED)
        )
        assert anonymous.get_object(Bucket="public", Key="hello.txt")["Body"].read() == b"hi there"
        # every request on the listener is S3, even one the other faces would take
        health = httpx.get(f"{s3_url}/health")
        assert health.headers["content-type"] == "application/xml" and health.headers["x-amz-request-id"]
        assert httpx.get(f"{url}/health").status_code == 200  # the main port is unchanged
    finally:
        proc.stop()  # uvicorn shuts down gracefully, then re-raises SIGTERM
