"""Keboola files through the S3 face: the temporary credentials of ``files/prepare`` and of a
file's detail (``federationToken``), and everything they must not reach.

A real server (local blob store, and an S3 blob store on moto), boto3 signing with the
credentials exactly as Keboola's clients do. Every refusal is checked to have changed nothing.
"""

from __future__ import annotations

import base64
import gzip
import hashlib
import io
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from support.server import RunningServer, start_server

FILES_BUCKET = "entrepot-files"
SESSION_TTL = 900


@pytest.fixture(scope="module", params=["local", "s3"])
def server(request, tmp_path_factory) -> Iterator[RunningServer]:  # type: ignore[no-untyped-def]
    extra: dict[str, Any] = {}
    if request.param == "s3":
        s3 = request.getfixturevalue("s3_server")
        extra = s3.settings(s3.create_bucket())
    running = start_server(
        tmp_path_factory.mktemp(f"kfiles-{request.param}"), s3_session_ttl=SESSION_TTL, **extra
    )
    yield running
    running.stop()


@pytest.fixture(autouse=True)
def hermetic_aws(monkeypatch):  # type: ignore[no-untyped-def]
    """boto3 sees only what a test gives it: no config files, no instance metadata, no env keys."""
    for name in (
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_CA_BUNDLE",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_S3",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


# -- helpers -------------------------------------------------------------------------------------


def prepare(server: RunningServer, token: str | None = None, **params: Any) -> dict[str, Any]:
    data = {"name": "data.csv", "isEncrypted": "1", "federationToken": "1", **params}
    r = requests.post(f"{server.url}/v2/storage/files/prepare", headers=server.headers(token), data=data)
    assert r.status_code == 201, r.text
    return r.json()


def detail(server: RunningServer, file_id: int, token: str | None = None, **params: Any) -> dict[str, Any]:
    r = requests.get(f"{server.url}/v2/storage/files/{file_id}", headers=server.headers(token), params=params)
    assert r.status_code == 200, r.text
    return r.json()


def read_credentials(server: RunningServer, file_id: int, token: str | None = None) -> dict[str, Any]:
    return detail(server, file_id, token, federationToken="true")["credentials"]


def s3(server: RunningServer, credentials: dict[str, Any]):  # type: ignore[no-untyped-def]
    """A boto3 client signing with temporary credentials (AWS STS's shape), as kbcstorage builds it."""
    return boto3.client(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials.get("SessionToken"),
        region_name="us-east-1",
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}, s3={"addressing_style": "path"}),
    )


def access_key_client(server: RunningServer, token: str | None = None):  # type: ignore[no-untyped-def]
    r = requests.post(f"{server.url}/s3/v1/keys", headers=server.headers(token), json={"description": "test"})
    assert r.status_code == 201, r.text
    key = r.json()
    return s3(server, {"AccessKeyId": key["accessKeyId"], "SecretAccessKey": key["secretAccessKey"]})


def code_of(call, *args: Any, **kwargs: Any) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    return str(caught.value.response["Error"]["Code"])


def uploaded(server: RunningServer, content: bytes, name: str = "data.csv", token: str | None = None) -> dict:  # type: ignore[type-arg]
    prepared = prepare(server, token, name=name, sizeBytes=str(len(content)))
    params = prepared["uploadParams"]
    s3(server, params["credentials"]).put_object(Bucket=params["bucket"], Key=params["key"], Body=content)
    return prepared


def token_id(token: str) -> int:
    return int(token.split("-")[1])


# -- what files/prepare and detail hand out --------------------------------------------------------


def test_prepare_with_federation_token_hands_out_upload_credentials(server):
    before = datetime.now(UTC)
    prepared = prepare(server, sizeBytes="6")
    params = prepared["uploadParams"]
    assert prepared["provider"] == "aws" and prepared["region"] == "us-east-1"
    assert params["bucket"] == FILES_BUCKET and params["acl"] == "private"
    assert params["key"] == f"projects/{server.project_id}/files/{prepared['id']}/data.csv"
    assert params["x-amz-server-side-encryption"] == "AES256"
    creds = params["credentials"]
    assert set(creds) == {"AccessKeyId", "SecretAccessKey", "SessionToken", "Expiration"}
    assert creds["AccessKeyId"].startswith("ES") and len(creds["AccessKeyId"]) == 20
    assert len(creds["SecretAccessKey"]) == 40
    expiration = datetime.fromisoformat(creds["Expiration"])
    assert expiration.utcoffset() == timedelta(0)
    assert (
        before + timedelta(seconds=SESSION_TTL - 5)
        <= expiration
        <= datetime.now(UTC) + timedelta(seconds=SESSION_TTL)
    )
    # every prepare gets credentials of its own
    assert prepare(server)["uploadParams"]["credentials"]["AccessKeyId"] != creds["AccessKeyId"]


def test_without_federation_token_there_are_no_credentials(server):
    r = requests.post(
        f"{server.url}/v2/storage/files/prepare", headers=server.headers(), data={"name": "plain.csv"}
    )
    assert r.status_code == 201 and "credentials" not in r.json()["uploadParams"]
    body = detail(server, r.json()["id"])
    assert "credentials" not in body and "s3Path" not in body
    assert all(
        "credentials" not in f
        for f in requests.get(f"{server.url}/v2/storage/files", headers=server.headers()).json()
    )


def test_upload_then_read_with_the_detail_credentials(server):
    content = b"col1,col2\nx,y\n" * 1000
    prepared = uploaded(server, content)
    body = detail(server, prepared["id"], federationToken="true")
    assert body["isUploaded"] is True and body["sizeBytes"] == len(content)
    assert body["s3Path"] == {"bucket": FILES_BUCKET, "key": prepared["uploadParams"]["key"]}
    reader = s3(server, body["credentials"])
    bucket, key = FILES_BUCKET, body["s3Path"]["key"]
    etag = '"' + hashlib.md5(content).hexdigest() + '"'

    head = reader.head_object(Bucket=bucket, Key=key)
    assert head["ContentLength"] == len(content) and head["ETag"] == etag
    got = reader.get_object(Bucket=bucket, Key=key)
    assert got["Body"].read() == content and got["ETag"] == etag
    part = reader.get_object(Bucket=bucket, Key=key, Range="bytes=5-9")
    assert part["ResponseMetadata"]["HTTPStatusCode"] == 206 and part["Body"].read() == content[5:10]
    assert part["ContentRange"] == f"bytes 5-9/{len(content)}"
    assert code_of(reader.get_object, Bucket=bucket, Key=key, IfNoneMatch=etag) == "304"
    assert code_of(reader.get_object, Bucket=bucket, Key=key, IfMatch='"0123"') == "PreconditionFailed"
    assert (
        code_of(reader.get_object, Bucket=bucket, Key=key, Range=f"bytes={len(content)}-") == "InvalidRange"
    )
    assert reader.get_object(Bucket=bucket, Key=key, IfMatch=etag)["Body"].read() == content


def test_a_file_is_readable_through_s3_before_and_after_its_upload_only(server):
    prepared = prepare(server)
    key = prepared["uploadParams"]["key"]
    reader = s3(server, read_credentials(server, prepared["id"]))
    assert code_of(reader.get_object, Bucket=FILES_BUCKET, Key=key) == "NoSuchKey"
    s3(server, prepared["uploadParams"]["credentials"]).put_object(Bucket=FILES_BUCKET, Key=key, Body=b"late")
    assert reader.get_object(Bucket=FILES_BUCKET, Key=key)["Body"].read() == b"late"


def test_the_put_echoes_the_checksum_and_encryption_kbcstorage_sends(server):
    prepared = prepare(server, sizeBytes="5")
    params = prepared["uploadParams"]
    obj = boto3.resource(
        "s3",
        endpoint_url=server.url,
        aws_access_key_id=params["credentials"]["AccessKeyId"],
        aws_secret_access_key=params["credentials"]["SecretAccessKey"],
        aws_session_token=params["credentials"]["SessionToken"],
        region_name=prepared["region"],
    ).Object(params["bucket"], params["key"])
    answer = obj.put(
        ACL=params["acl"],
        Body=io.BytesIO(b"hello"),
        ContentDisposition="attachment; filename=data.csv;",
        ServerSideEncryption=params["x-amz-server-side-encryption"],
        ChecksumAlgorithm="SHA256",
    )
    assert answer["ServerSideEncryption"] == "AES256"
    assert answer["ChecksumSHA256"] == base64.b64encode(hashlib.sha256(b"hello").digest()).decode()
    assert detail(server, prepared["id"])["sizeBytes"] == 5


# -- scope: one key, one direction --------------------------------------------------------------------


def test_upload_credentials_put_their_key_and_nothing_else(server):
    a, b = prepare(server, name="a.csv"), prepare(server, name="b.csv")
    writer = s3(server, a["uploadParams"]["credentials"])
    key_a, key_b = a["uploadParams"]["key"], b["uploadParams"]["key"]
    assert code_of(writer.put_object, Bucket=FILES_BUCKET, Key=key_b, Body=b"intruder") == "AccessDenied"
    assert code_of(writer.put_object, Bucket=FILES_BUCKET, Key=key_a + "x", Body=b"x") == "AccessDenied"
    assert code_of(writer.put_object, Bucket="other", Key=key_a, Body=b"x") == "AccessDenied"
    writer.put_object(Bucket=FILES_BUCKET, Key=key_a, Body=b"mine")
    # upload credentials do not read, not even their own file
    assert code_of(writer.get_object, Bucket=FILES_BUCKET, Key=key_a) == "AccessDenied"
    assert code_of(writer.head_object, Bucket=FILES_BUCKET, Key=key_a) == "403"
    # nor list, delete, copy or go multipart
    assert code_of(writer.list_objects_v2, Bucket=FILES_BUCKET) == "AccessDenied"
    assert code_of(writer.list_objects, Bucket=FILES_BUCKET) == "AccessDenied"
    assert code_of(writer.list_buckets) == "AccessDenied"
    assert code_of(writer.delete_object, Bucket=FILES_BUCKET, Key=key_a) == "AccessDenied"
    assert (
        code_of(writer.delete_objects, Bucket=FILES_BUCKET, Delete={"Objects": [{"Key": key_a}]})
        == "AccessDenied"
    )
    assert code_of(writer.head_bucket, Bucket=FILES_BUCKET) == "403"
    assert (
        code_of(
            writer.copy_object,
            Bucket=FILES_BUCKET,
            Key=key_a,
            CopySource={"Bucket": FILES_BUCKET, "Key": key_b},
        )
        == "AccessDenied"
    )
    assert code_of(writer.create_multipart_upload, Bucket=FILES_BUCKET, Key=key_a) == "NotImplemented"
    assert code_of(writer.put_object_acl, Bucket=FILES_BUCKET, Key=key_a, ACL="private") == "AccessDenied"
    # nothing of that changed a byte
    assert detail(server, b["id"])["isUploaded"] is False
    reader = s3(server, read_credentials(server, a["id"]))
    assert reader.get_object(Bucket=FILES_BUCKET, Key=key_a)["Body"].read() == b"mine"


def test_read_credentials_read_their_key_and_nothing_else(server):
    a, b = uploaded(server, b"file a", "a.csv"), uploaded(server, b"file b", "b.csv")
    reader = s3(server, read_credentials(server, a["id"]))
    key_a, key_b = a["uploadParams"]["key"], b["uploadParams"]["key"]
    assert code_of(reader.get_object, Bucket=FILES_BUCKET, Key=key_b) == "AccessDenied"
    assert code_of(reader.head_object, Bucket=FILES_BUCKET, Key=key_b) == "403"
    assert code_of(reader.put_object, Bucket=FILES_BUCKET, Key=key_a, Body=b"overwritten") == "AccessDenied"
    assert code_of(reader.get_object, Bucket="default." + FILES_BUCKET, Key=key_a) == "AccessDenied"
    assert reader.get_object(Bucket=FILES_BUCKET, Key=key_a)["Body"].read() == b"file a"
    other = s3(server, read_credentials(server, b["id"]))
    assert other.get_object(Bucket=FILES_BUCKET, Key=key_b)["Body"].read() == b"file b"


def test_session_credentials_never_reach_spaces(server):
    keyed = access_key_client(server)
    keyed.create_bucket(Bucket="sessions-no")
    keyed.put_object(Bucket="sessions-no", Key="secret.txt", Body=b"space bytes")
    prepared = uploaded(server, b"file")
    for creds in (prepared["uploadParams"]["credentials"], read_credentials(server, prepared["id"])):
        client = s3(server, creds)
        assert code_of(client.get_object, Bucket="sessions-no", Key="secret.txt") == "AccessDenied"
        assert code_of(client.get_object, Bucket="default.sessions-no", Key="secret.txt") == "AccessDenied"
        assert code_of(client.put_object, Bucket="sessions-no", Key="secret.txt", Body=b"x") == "AccessDenied"
        assert code_of(client.list_objects_v2, Bucket="sessions-no") == "AccessDenied"
        assert code_of(client.delete_object, Bucket="sessions-no", Key="secret.txt") == "AccessDenied"
    assert keyed.get_object(Bucket="sessions-no", Key="secret.txt")["Body"].read() == b"space bytes"


def test_access_keys_never_reach_the_files_bucket(server):
    prepared = uploaded(server, b"the file")
    key = prepared["uploadParams"]["key"]
    keyed = access_key_client(server)
    assert code_of(keyed.get_object, Bucket=FILES_BUCKET, Key=key) == "NoSuchBucket"
    assert code_of(keyed.put_object, Bucket=FILES_BUCKET, Key=key, Body=b"x") == "NoSuchBucket"
    # a space of that name is a space like any other for access keys; files stay files
    keyed.create_bucket(Bucket=FILES_BUCKET)
    keyed.put_object(Bucket=FILES_BUCKET, Key=key, Body=b"the space's object")
    assert keyed.get_object(Bucket=FILES_BUCKET, Key=key)["Body"].read() == b"the space's object"
    reader = s3(server, read_credentials(server, prepared["id"]))
    assert reader.get_object(Bucket=FILES_BUCKET, Key=key)["Body"].read() == b"the file"
    keyed.delete_object(Bucket=FILES_BUCKET, Key=key)
    keyed.delete_bucket(Bucket=FILES_BUCKET)


# -- bodies: size, digests, replacement ----------------------------------------------------------------


def test_the_first_upload_must_have_the_prepared_size(server):
    prepared = prepare(server, sizeBytes="10")
    params = prepared["uploadParams"]
    writer = s3(server, params["credentials"])
    assert (
        code_of(writer.put_object, Bucket=FILES_BUCKET, Key=params["key"], Body=b"12345") == "IncompleteBody"
    )
    assert (
        code_of(writer.put_object, Bucket=FILES_BUCKET, Key=params["key"], Body=b"x" * 11) == "IncompleteBody"
    )
    body = detail(server, prepared["id"])
    assert body["isUploaded"] is False and body["sizeBytes"] == 10
    reader = s3(server, read_credentials(server, prepared["id"]))
    assert code_of(reader.get_object, Bucket=FILES_BUCKET, Key=params["key"]) == "NoSuchKey"
    writer.put_object(Bucket=FILES_BUCKET, Key=params["key"], Body=b"0123456789")
    assert detail(server, prepared["id"])["isUploaded"] is True
    assert reader.get_object(Bucket=FILES_BUCKET, Key=params["key"])["Body"].read() == b"0123456789"


def test_a_reupload_replaces_the_bytes_and_a_bad_one_changes_nothing(server):
    prepared = uploaded(server, b"first")
    params = prepared["uploadParams"]
    writer = s3(server, params["credentials"])
    reader = s3(server, read_credentials(server, prepared["id"]))
    writer.put_object(Bucket=FILES_BUCKET, Key=params["key"], Body=b"second, longer")
    assert reader.get_object(Bucket=FILES_BUCKET, Key=params["key"])["Body"].read() == b"second, longer"
    assert detail(server, prepared["id"])["sizeBytes"] == len(b"second, longer")

    wrong_md5 = base64.b64encode(hashlib.md5(b"something else").digest()).decode()
    code = code_of(
        writer.put_object, Bucket=FILES_BUCKET, Key=params["key"], Body=b"third", ContentMD5=wrong_md5
    )
    assert code == "BadDigest"
    assert reader.get_object(Bucket=FILES_BUCKET, Key=params["key"])["Body"].read() == b"second, longer"
    assert detail(server, prepared["id"])["sizeBytes"] == len(b"second, longer")


def test_a_first_upload_with_a_bad_digest_leaves_nothing(server):
    prepared = prepare(server)
    params = prepared["uploadParams"]
    writer = s3(server, params["credentials"])
    wrong_md5 = base64.b64encode(hashlib.md5(b"other").digest()).decode()
    code = code_of(
        writer.put_object, Bucket=FILES_BUCKET, Key=params["key"], Body=b"bytes", ContentMD5=wrong_md5
    )
    assert code == "BadDigest"
    assert detail(server, prepared["id"])["isUploaded"] is False
    assert server.services.blobs.head(params["key"]) is None


# -- lifetime: expiry, the token, the file ---------------------------------------------------------------


def test_credentials_expire_with_their_short_lived_token(server):
    short = server.token_for(description="short-lived", expires_in=2)
    prepared = prepare(server, short)
    creds = prepared["uploadParams"]["credentials"]
    expiration = datetime.fromisoformat(creds["Expiration"])
    assert expiration <= datetime.now(UTC) + timedelta(seconds=2)
    while datetime.now(UTC) <= expiration:  # the clock has to pass the expiry: that is what is tested
        time.sleep(0.1)
    writer, key = s3(server, creds), prepared["uploadParams"]["key"]
    assert code_of(writer.put_object, Bucket=FILES_BUCKET, Key=key, Body=b"x") == "ExpiredToken"
    assert detail(server, prepared["id"])["isUploaded"] is False


def test_credentials_die_with_the_token_that_prepared_the_file(server):
    uploader = server.token_for(description="uploader")
    prepared = prepare(server, uploader, sizeBytes="4")
    reading = read_credentials(server, prepared["id"], uploader)
    r = requests.delete(f"{server.url}/v2/storage/tokens/{token_id(uploader)}", headers=server.headers())
    assert r.status_code == 204, r.text
    key = prepared["uploadParams"]["key"]
    writer = s3(server, prepared["uploadParams"]["credentials"])
    assert code_of(writer.put_object, Bucket=FILES_BUCKET, Key=key, Body=b"data") == "InvalidAccessKeyId"
    assert code_of(s3(server, reading).get_object, Bucket=FILES_BUCKET, Key=key) == "InvalidAccessKeyId"
    assert detail(server, prepared["id"])["isUploaded"] is False


def test_credentials_die_with_their_file(server):
    prepared = uploaded(server, b"doomed")
    reading = read_credentials(server, prepared["id"])
    r = requests.delete(f"{server.url}/v2/storage/files/{prepared['id']}", headers=server.headers())
    assert r.status_code == 204
    key = prepared["uploadParams"]["key"]
    assert code_of(s3(server, reading).get_object, Bucket=FILES_BUCKET, Key=key) == "InvalidAccessKeyId"
    writer = s3(server, prepared["uploadParams"]["credentials"])
    assert code_of(writer.put_object, Bucket=FILES_BUCKET, Key=key, Body=b"again") == "InvalidAccessKeyId"


def test_altered_credentials_are_refused(server):
    prepared = prepare(server)
    creds = dict(prepared["uploadParams"]["credentials"])
    key = prepared["uploadParams"]["key"]
    wrong_secret = {**creds, "SecretAccessKey": creds["SecretAccessKey"][:-1] + "A"}
    if wrong_secret["SecretAccessKey"] == creds["SecretAccessKey"]:
        wrong_secret["SecretAccessKey"] = creds["SecretAccessKey"][:-1] + "B"
    assert code_of(s3(server, wrong_secret).put_object, Bucket=FILES_BUCKET, Key=key, Body=b"x") == (
        "SignatureDoesNotMatch"
    )
    other = prepare(server)["uploadParams"]["credentials"]
    swapped = {**creds, "SessionToken": other["SessionToken"]}  # a genuine token of another file
    assert code_of(s3(server, swapped).put_object, Bucket=FILES_BUCKET, Key=key, Body=b"x") == "InvalidToken"
    assert (
        code_of(
            s3(server, {**creds, "SessionToken": None}).put_object, Bucket=FILES_BUCKET, Key=key, Body=b"x"
        )
        == "InvalidToken"
    )
    assert detail(server, prepared["id"])["isUploaded"] is False


def test_only_a_token_that_sees_a_file_gets_its_read_credentials(server):
    prepared = uploaded(server, b"master's file")
    plain = server.token_for(description="plain")
    r = requests.get(
        f"{server.url}/v2/storage/files/{prepared['id']}",
        headers=server.headers(plain),
        params={"federationToken": "true"},
    )
    assert r.status_code == 404 and "credentials" not in r.text
    reader_token = server.token_for(description="reader", can_read_all_file_uploads=True)
    reader = s3(server, read_credentials(server, prepared["id"], reader_token))
    key = prepared["uploadParams"]["key"]
    assert reader.get_object(Bucket=FILES_BUCKET, Key=key)["Body"].read() == b"master's file"


def test_an_export_is_served_as_stored_headerless(server):
    prepared = uploaded(server, b"id,name\n1,Ann\n2,Bob\n", "people.csv")
    api, headers = f"{server.url}/v2/storage", server.headers()
    r = requests.post(f"{api}/buckets", headers=headers, data={"name": "s3x", "stage": "in"})
    assert r.status_code == 201, r.text
    job = requests.post(
        f"{api}/buckets/in.c-s3x/tables-async",
        headers=headers,
        data={"name": "people", "dataFileId": prepared["id"]},
    ).json()
    assert wait_job(server, job["id"])["status"] == "success"
    for is_gzip in (True, False):
        job = requests.post(
            f"{api}/tables/in.c-s3x.people/export-async", headers=headers, data={"gzip": int(is_gzip)}
        ).json()
        done = wait_job(server, job["id"])
        assert done["status"] == "success", done
        body = detail(server, done["results"]["file"]["id"], federationToken="true")
        raw = s3(server, body["credentials"]).get_object(**_path(body))["Body"].read()
        if is_gzip:
            assert raw[:2] == b"\x1f\x8b"
            raw = gzip.decompress(raw)
        assert sorted(raw.decode().splitlines()) == ['"1","Ann"', '"2","Bob"']  # no header row
    requests.delete(f"{api}/buckets/in.c-s3x", headers=headers, params={"force": "true"})


def _path(body: dict[str, Any]) -> dict[str, str]:
    return {"Bucket": body["s3Path"]["bucket"], "Key": body["s3Path"]["key"]}


def wait_job(server: RunningServer, job_id: int) -> dict[str, Any]:
    r = requests.get(f"{server.url}/v2/storage/jobs/{job_id}", headers=server.headers(), params={"wait": 30})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    assert body["status"] in ("success", "error"), body
    return body


def test_a_body_that_is_not_the_signed_one_is_refused_and_nothing_is_stored(server):
    from botocore.auth import S3SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials

    prepared = prepare(server, sizeBytes="8")
    creds, key = prepared["uploadParams"]["credentials"], prepared["uploadParams"]["key"]
    url = f"{server.url}/{FILES_BUCKET}/{key}"
    signed = AWSRequest(method="PUT", url=url, data=b"original")
    S3SigV4Auth(
        Credentials(creds["AccessKeyId"], creds["SecretAccessKey"], creds["SessionToken"]), "s3", "us-east-1"
    ).add_auth(signed)
    assert signed.headers["X-Amz-Content-SHA256"] == hashlib.sha256(b"original").hexdigest()
    r = requests.put(url, data=b"tampered", headers=dict(signed.headers.items()))  # same length, other bytes
    assert r.status_code == 400 and "<Code>XAmzContentSHA256Mismatch</Code>" in r.text
    assert detail(server, prepared["id"])["isUploaded"] is False
    assert server.services.blobs.head(key) is None
    r = requests.put(url, data=b"original", headers=dict(signed.headers.items()))
    assert r.status_code == 200, r.text
    assert detail(server, prepared["id"])["isUploaded"] is True


def test_sliced_files_are_refused_clearly(server):
    prepared = prepare(server, isSliced="1")
    params = prepared["uploadParams"]
    writer = s3(server, params["credentials"])
    code = code_of(writer.put_object, Bucket=FILES_BUCKET, Key=params["key"] + "part0", Body=b"slice")
    assert code == "NotImplemented"
    assert detail(server, prepared["id"])["isUploaded"] is False


def test_presigned_urls_of_the_credentials_have_the_same_scope(server):
    prepared = uploaded(server, b"presigned")
    key = prepared["uploadParams"]["key"]
    reader = s3(server, read_credentials(server, prepared["id"]))
    url = reader.generate_presigned_url(
        "get_object", Params={"Bucket": FILES_BUCKET, "Key": key}, ExpiresIn=60
    )
    assert "X-Amz-Security-Token=" in url
    r = requests.get(url)
    assert r.status_code == 200 and r.content == b"presigned"
    put = reader.generate_presigned_url(
        "put_object", Params={"Bucket": FILES_BUCKET, "Key": key}, ExpiresIn=60
    )
    r = requests.put(put, data=b"overwrite")
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    assert requests.get(url).content == b"presigned"
