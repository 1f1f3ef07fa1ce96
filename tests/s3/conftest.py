"""Fixtures of the S3 face's tests: one real server per module with an S3 listener, an access key,
clients configured only with the endpoint and the key (as a user would), a hermetic environment
for client subprocesses."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from entrepot.core import access_keys, auth
from support.server import RunningServer, start_server


@dataclass(frozen=True)
class Key:
    access_key_id: str
    secret_access_key: str


@dataclass
class S3Env:
    """A running server with an S3 listener and the master token's access key."""

    server: RunningServer
    key: Key
    ca: str | None  # the self-signed CA over HTTPS

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def s3_url(self) -> str:
        assert self.server.s3_url is not None
        return self.server.s3_url

    def new_key(self, token: str | None = None) -> Key:
        principal = auth.authenticate(self.server.services.catalog, token or self.server.token)
        view = access_keys.create(self.server.services, principal, description="tests")
        assert view.secret_access_key is not None
        return Key(view.access_key_id, view.secret_access_key)

    def client(self, key: Key | None = None, *, url: str | None = None, **config: Any) -> Any:
        key = key or self.key
        config.setdefault("signature_version", "s3v4")
        config.setdefault("retries", {"max_attempts": 1, "mode": "standard"})
        return boto3.client(
            "s3",
            endpoint_url=url or self.url,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
            region_name="us-east-1",
            verify=self.ca if self.ca else True,
            config=Config(**config),
        )

    def resource(self, key: Key | None = None) -> Any:
        key = key or self.key
        return boto3.resource(
            "s3",
            endpoint_url=self.url,
            aws_access_key_id=key.access_key_id,
            aws_secret_access_key=key.secret_access_key,
            region_name="us-east-1",
            verify=self.ca if self.ca else True,
            config=Config(signature_version="s3v4", retries={"max_attempts": 1, "mode": "standard"}),
        )

    def bucket(self, prefix: str = "b") -> str:
        """A new space (bucket) of the default project."""
        name = f"{prefix}-{uuid.uuid4().hex[:10]}"
        self.client().create_bucket(Bucket=name)
        return name

    def client_env(self, key: Key | None = None, **extra: str) -> dict[str, str]:
        """A hermetic environment for a client subprocess: only this server, this key, no config files."""
        key = key or self.key
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith("AWS_") and k not in ("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE")
        }
        env.update(
            AWS_ACCESS_KEY_ID=key.access_key_id,
            AWS_SECRET_ACCESS_KEY=key.secret_access_key,
            AWS_DEFAULT_REGION="us-east-1",
            AWS_ENDPOINT_URL_S3=self.url,
            AWS_CONFIG_FILE=os.devnull,
            AWS_SHARED_CREDENTIALS_FILE=os.devnull,
            AWS_EC2_METADATA_DISABLED="true",
            AWS_MAX_ATTEMPTS="1",
            NO_PROXY="127.0.0.1,localhost",
        )
        if self.ca:
            env["AWS_CA_BUNDLE"] = self.ca
        env.update(extra)
        return env


def _start(tmp: Path, **overrides: Any) -> Iterator[S3Env]:
    server = start_server(tmp, s3_port=0, **overrides)
    ca = str(tmp / "tls" / "ca.pem") if overrides.get("tls") else None
    env = S3Env(server, Key("", ""), ca)
    env.key = env.new_key()
    try:
        yield env
    finally:
        server.stop()


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Env]:
    """One server per module, over plain HTTP, with its S3 listener."""
    yield from _start(tmp_path_factory.mktemp("s3"))


@pytest.fixture(scope="module")
def s3_tls(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Env]:
    """One server per module over HTTPS (--tls self-signed): clients send aws-chunked bodies there."""
    yield from _start(tmp_path_factory.mktemp("s3tls"), tls="self-signed")
