"""A real S3-speaking server for tests: moto's standalone server as a subprocess on 127.0.0.1.

::

    server = S3Server(log_dir).start()
    bucket = server.create_bucket()           # a fresh, empty bucket
    store = server.store(bucket, "prefix")    # an S3BlobStore on it
    server.stop()

Tests get one per session through the ``s3_server`` fixture (tests/conftest.py). moto keeps
everything in memory and checks no signatures; any access key works, ``testing`` is used.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

from support.server import free_port

ACCESS_KEY = "testing"
SECRET_KEY = "testing"
REGION = "us-east-1"

_buckets = itertools.count(1)


class S3Server:
    """``python -m moto.server -H 127.0.0.1 -p PORT`` and clients for it."""

    access_key_id = ACCESS_KEY
    secret_access_key = SECRET_KEY
    region = REGION

    def __init__(self, log_dir: Path):
        self.port = free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self.log_path = Path(log_dir) / "moto.log"
        self._log: Any = None
        self.proc: subprocess.Popen[bytes] | None = None
        self._client: Any = None

    def start(self, timeout: float = 60) -> S3Server:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MOTO_"))}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"moto server exited early:\n{self.output()}")
            try:
                httpx.get(f"{self.endpoint_url}/moto-api/data.json", timeout=1)
                return self
            except httpx.HTTPError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(
            f"moto server on {self.endpoint_url} did not answer in {timeout}s:\n{self.output()}"
        )

    def output(self) -> str:
        if self._log is not None and not self._log.closed:
            self._log.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        if self._log is not None:
            self._log.close()

    # -- clients --------------------------------------------------------------------------
    def client(self) -> Any:
        """A plain boto3 S3 client for the server (to look behind a store's back)."""
        if self._client is None:
            import boto3

            self._client = boto3.session.Session().client(
                "s3",
                endpoint_url=self.endpoint_url,
                region_name=self.region,
                aws_access_key_id=self.access_key_id,
                aws_secret_access_key=self.secret_access_key,
            )
        return self._client

    def create_bucket(self, name: str | None = None) -> str:
        """Create a fresh bucket (a unique name unless given) and return its name."""
        name = name or f"test-{next(_buckets)}-{uuid.uuid4().hex[:8]}"
        self.client().create_bucket(Bucket=name)
        return name

    def store(self, bucket: str | None = None, prefix: str = "") -> Any:
        """An S3BlobStore on ``bucket`` (a fresh one unless given) under ``prefix``."""
        from entrepot.core.blobs.s3 import S3BlobStore

        return S3BlobStore(
            bucket or self.create_bucket(),
            prefix,
            endpoint_url=self.endpoint_url,
            region=self.region,
            access_key_id=self.access_key_id,
            secret_access_key=self.secret_access_key,
        )

    def settings(self, bucket: str, prefix: str = "") -> dict[str, Any]:
        """Settings overrides that point an entrepot server's blob store at ``bucket``/``prefix``."""
        url = f"s3://{bucket}/{prefix}" if prefix else f"s3://{bucket}"
        return {
            "blob_url": url,
            "blob_s3_endpoint_url": self.endpoint_url,
            "blob_s3_region": self.region,
            "blob_s3_access_key_id": self.access_key_id,
            "blob_s3_secret_access_key": self.secret_access_key,
        }

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        """Every object key in ``bucket`` starting with ``prefix``."""
        paginator = self.client().get_paginator("list_objects_v2")
        pages = paginator.paginate(Bucket=bucket, Prefix=prefix)
        return [obj["Key"] for page in pages for obj in page.get("Contents") or []]

    def multipart_uploads(self, bucket: str) -> list[dict[str, Any]]:
        """Multipart uploads still in progress in ``bucket``."""
        return list(self.client().list_multipart_uploads(Bucket=bucket).get("Uploads") or [])
