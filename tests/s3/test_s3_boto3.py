"""boto3 (client and resource API) against a real server, over plain HTTP, on the shared port and on
the S3 listener: buckets, objects, listings, copies, deletes, multipart, checksums, presigned URLs,
authentication failures, anonymous access and cross-face reads."""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import time
import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock

import boto3
import botocore.auth
import httpx
import pytest
import requests
from boto3.s3.transfer import TransferConfig
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from entrepot.core import auth
from entrepot.core.objects import service
from entrepot.core.projects import create_project

MiB = 1024 * 1024


def error_of(call, *args, **kwargs) -> tuple[str, int, dict]:
    with pytest.raises(ClientError) as caught:
        call(*args, **kwargs)
    response = caught.value.response
    return (
        response["Error"].get("Code", ""),
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"],
    )


def md5_b64(data: bytes) -> str:
    return base64.b64encode(hashlib.md5(data).digest()).decode()


# -- buckets -------------------------------------------------------------------------------------------
def test_bucket_lifecycle(s3):
    c = s3.client()
    name = f"life-{uuid.uuid4().hex[:8]}"
    created = c.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    assert created["Location"] == f"/{name}"
    assert c.head_bucket(Bucket=name)["ResponseMetadata"]["HTTPHeaders"]["x-amz-bucket-region"] == "us-east-1"
    assert name in [b["Name"] for b in c.list_buckets()["Buckets"]]
    assert c.get_bucket_location(Bucket=name).get("LocationConstraint") in (None, "")
    assert "Status" not in c.get_bucket_versioning(Bucket=name)
    assert error_of(c.create_bucket, Bucket=name)[:2] == ("BucketAlreadyOwnedByYou", 409)
    c.put_object(Bucket=name, Key="k", Body=b"x")
    assert error_of(c.delete_bucket, Bucket=name)[:2] == ("BucketNotEmpty", 409)
    c.delete_object(Bucket=name, Key="k")
    c.delete_bucket(Bucket=name)
    assert error_of(c.head_bucket, Bucket=name)[:2] == ("404", 404)
    code, status, error = error_of(c.list_objects_v2, Bucket=name)
    assert (code, status, error["BucketName"]) == ("NoSuchBucket", 404, name)


def test_bucket_names(s3):
    c = s3.client()
    assert error_of(c.create_bucket, Bucket="a.b.c")[:2] == ("InvalidBucketName", 400)
    assert error_of(c.create_bucket, Bucket="ab--")[:2] == ("InvalidBucketName", 400)
    assert error_of(c.delete_bucket, Bucket="public")[:2] == ("AccessDenied", 403)
    # <project>.<space> names a space of a project explicitly
    c.put_object(Bucket="default.private", Key="explicit.txt", Body=b"e")
    assert c.get_object(Bucket="private", Key="explicit.txt")["Body"].read() == b"e"
    assert error_of(c.create_bucket, Bucket="elsewhere.newspace")[:2] == ("AccessDenied", 403)


def test_keys_of_another_project_see_only_their_own(s3):
    other = create_project(s3.server.services.catalog, f"other-{uuid.uuid4().hex[:6]}")
    key = s3.new_key(other.master.token)
    theirs = s3.client(key)
    mine = s3.client()
    mine.put_object(Bucket="private", Key="secret.txt", Body=b"mine")
    assert [b["Name"] for b in theirs.list_buckets()["Buckets"]] == ["private", "public"]
    assert error_of(theirs.head_object, Bucket="private", Key="secret.txt")[:2] == (
        "404",
        404,
    )  # their own space
    assert error_of(theirs.get_object, Bucket="default.private", Key="secret.txt")[:2] == (
        "AccessDenied",
        403,
    )
    assert error_of(theirs.put_object, Bucket="default.public", Key="x", Body=b"x")[:2] == (
        "AccessDenied",
        403,
    )
    mine.put_object(Bucket="public", Key="shared.txt", Body=b"everyone")
    assert theirs.get_object(Bucket="default.public", Key="shared.txt")["Body"].read() == b"everyone"


# -- objects -------------------------------------------------------------------------------------------
def test_put_keeps_metadata_type_and_headers(s3):
    c = s3.client()
    body = b"id,name\n1,a\n"
    put = c.put_object(
        Bucket="private",
        Key="meta/file.csv",
        Body=body,
        ACL="private",
        ContentType="text/csv; charset=utf-8",
        ContentDisposition="attachment; filename=file.csv;",
        ContentLanguage="fr",
        CacheControl="max-age=60",
        ServerSideEncryption="AES256",
        Metadata={"Owner-Id": "42", "kind": "table"},
        ContentMD5=md5_b64(body),
    )
    assert put["ETag"] == f'"{hashlib.md5(body).hexdigest()}"'
    assert put["ServerSideEncryption"] == "AES256"
    for response in (
        c.head_object(Bucket="private", Key="meta/file.csv"),
        c.get_object(Bucket="private", Key="meta/file.csv"),
    ):
        assert response["ContentType"] == "text/csv; charset=utf-8"
        assert response["ContentDisposition"] == "attachment; filename=file.csv;"
        assert response["ContentLanguage"] == "fr" and response["CacheControl"] == "max-age=60"
        assert response["ServerSideEncryption"] == "AES256"
        assert response["Metadata"] == {"owner-id": "42", "kind": "table"}
        assert response["ContentLength"] == len(body) and response["ETag"] == put["ETag"]
        assert response["ResponseMetadata"]["HTTPHeaders"]["x-amz-request-id"]
    assert c.get_object(Bucket="private", Key="meta/file.csv")["Body"].read() == body
    # no type sent: S3's binary/octet-stream, not a guess from the extension
    c.put_object(Bucket="private", Key="meta/untyped.csv", Body=b"x")
    assert c.head_object(Bucket="private", Key="meta/untyped.csv")["ContentType"] == "binary/octet-stream"


def test_refused_writes_say_why(s3):
    c = s3.client()
    assert error_of(c.put_object, Bucket="private", Key="x", Body=b"x", ACL="public-read")[:2] == (
        "NotImplemented",
        501,
    )
    assert error_of(c.put_object, Bucket="private", Key="x", Body=b"abc", ContentMD5=md5_b64(b"abd"))[:2] == (
        "BadDigest",
        400,
    )
    assert error_of(c.put_object, Bucket="private", Key="x", Body=b"abc", ContentMD5="bm90LW1kNQ==")[:2] == (
        "InvalidDigest",
        400,
    )
    assert error_of(c.head_object, Bucket="private", Key="x")[:2] == ("404", 404)  # nothing was stored
    assert error_of(c.get_object_acl, Bucket="private", Key="x")[:2] == ("NotImplemented", 501)
    assert error_of(c.put_bucket_tagging, Bucket="private", Tagging={"TagSet": []})[:2] == (
        "NotImplemented",
        501,
    )


WEIRD_KEYS = [
    "sp ace.txt",
    "plus+sign.txt",
    "eq=ual.txt",
    "per%cent.txt",
    "ti~lde.txt",
    "ünï/cödé €.txt",
    "marks/!*'()[]{}^@$&,;:#|`.txt",
    "deep/er/key.bin",
]


def test_keys_with_any_character_round_trip_through_put_list_and_get(s3):
    c = s3.client()
    bucket = s3.bucket("keys")
    for i, key in enumerate(WEIRD_KEYS):
        c.put_object(Bucket=bucket, Key=key, Body=str(i).encode())
    listed = [o["Key"] for o in c.list_objects_v2(Bucket=bucket)["Contents"]]
    assert listed == sorted(WEIRD_KEYS, key=lambda k: k.encode())
    assert [o["Key"] for o in c.list_objects(Bucket=bucket)["Contents"]] == listed
    for i, key in enumerate(WEIRD_KEYS):
        assert c.get_object(Bucket=bucket, Key=key)["Body"].read() == str(i).encode()
    folders = c.list_objects_v2(Bucket=bucket, Delimiter="/")
    assert [p["Prefix"] for p in folders["CommonPrefixes"]] == ["deep/", "marks/", "ünï/"]
    assert folders["KeyCount"] == len(folders["Contents"]) + 3


@pytest.mark.parametrize("key", ["a//b", "a/../b", "dir/", "ctl\x01.txt", "k" * 1025])
def test_keys_the_core_refuses_are_invalid_arguments(s3, key):
    code, status, error = error_of(s3.client().put_object, Bucket="private", Key=key, Body=b"x")
    assert status == 400 and code in ("InvalidArgument", "KeyTooLongError")
    assert "key" in error["Message"]


def test_listing_pages_delimiters_start_after_and_markers(s3):
    c = s3.client()
    bucket = s3.bucket("pages")
    keys = ["a.txt", "b/1", "b/2", "c/1", "d.txt", "e/x/y", "f.txt"]
    for key in keys:
        c.put_object(Bucket=bucket, Key=key, Body=b"")
    pages = list(
        c.get_paginator("list_objects_v2").paginate(
            Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}
        )
    )
    assert len(pages) == 3  # six entries (3 keys, 3 folders), two a page
    seen = [o["Key"] for p in pages for o in p.get("Contents", [])] + [
        x["Prefix"] for p in pages for x in p.get("CommonPrefixes", [])
    ]
    assert sorted(seen) == ["a.txt", "b/", "c/", "d.txt", "e/", "f.txt"]
    assert all(p["KeyCount"] <= 2 for p in pages) and pages[0]["IsTruncated"] and not pages[-1]["IsTruncated"]
    after = c.list_objects_v2(Bucket=bucket, StartAfter="b/1")
    assert [o["Key"] for o in after["Contents"]] == keys[2:] and after["StartAfter"] == "b/1"
    assert c.list_objects_v2(Bucket=bucket, Prefix="b/")["KeyCount"] == 2
    assert c.list_objects_v2(Bucket=bucket, Prefix="zzz")["KeyCount"] == 0
    assert c.list_objects_v2(Bucket=bucket, Prefix="a//")["KeyCount"] == 0  # no key can start so
    assert c.list_objects_v2(Bucket=bucket, MaxKeys=0)["KeyCount"] == 0
    v1 = list(
        c.get_paginator("list_objects").paginate(
            Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}
        )
    )
    v1_seen = [o["Key"] for p in v1 for o in p.get("Contents", [])] + [
        x["Prefix"] for p in v1 for x in p.get("CommonPrefixes", [])
    ]
    assert sorted(v1_seen) == sorted(seen)  # NextMarker on a prefix skips the whole folder
    marked = c.list_objects(Bucket=bucket, Marker="c/1")
    assert [o["Key"] for o in marked["Contents"]] == keys[4:]
    fetch = c.list_objects_v2(Bucket=bucket, FetchOwner=True, MaxKeys=1)["Contents"][0]
    assert fetch["Owner"]["DisplayName"] == "default" and fetch["StorageClass"] == "STANDARD"


def test_a_listing_of_1100_keys_pages_to_the_end(s3):
    c = s3.client()
    bucket = s3.bucket("many")
    principal = auth.authenticate(s3.server.services.catalog, s3.server.token)
    for i in range(1100):  # seeded through the core: 1100 PUTs over HTTP would only test patience
        service.put_object(
            s3.server.services, principal, "default", bucket, f"k/{i:05d}", [b"x"], service.ObjectUpload()
        )
    first = c.list_objects_v2(Bucket=bucket)
    assert first["KeyCount"] == 1000 and first["IsTruncated"] and first["NextContinuationToken"]
    keys = [
        o["Key"] for p in c.get_paginator("list_objects_v2").paginate(Bucket=bucket) for o in p["Contents"]
    ]
    assert keys == [f"k/{i:05d}" for i in range(1100)]
    v1 = [o["Key"] for p in c.get_paginator("list_objects").paginate(Bucket=bucket) for o in p["Contents"]]
    assert v1 == keys


def test_ranges(s3):
    c = s3.client()
    c.put_object(Bucket="private", Key="range.txt", Body=b"0123456789")

    def get(r):
        response = c.get_object(Bucket="private", Key="range.txt", Range=r)
        return (
            response["Body"].read(),
            response.get("ContentRange"),
            response["ResponseMetadata"]["HTTPStatusCode"],
        )

    assert get("bytes=0-0") == (b"0", "bytes 0-0/10", 206)
    assert get("bytes=2-5") == (b"2345", "bytes 2-5/10", 206)
    assert get("bytes=5-") == (b"56789", "bytes 5-9/10", 206)
    assert get("bytes=-3") == (b"789", "bytes 7-9/10", 206)
    assert get("bytes=8-100") == (b"89", "bytes 8-9/10", 206)
    code, status, error = error_of(c.get_object, Bucket="private", Key="range.txt", Range="bytes=10-")
    assert (code, status) == ("InvalidRange", 416)
    assert error["ActualObjectSize"] == "10"


def test_conditional_reads(s3):
    c = s3.client()
    etag = c.put_object(Bucket="private", Key="cond.txt", Body=b"v1")["ETag"]
    assert c.get_object(Bucket="private", Key="cond.txt", IfMatch=etag)["Body"].read() == b"v1"
    assert (
        c.get_object(Bucket="private", Key="cond.txt", IfMatch=etag.strip('"'), Range="bytes=0-0")[
            "Body"
        ].read()
        == b"v"
    )
    assert error_of(c.get_object, Bucket="private", Key="cond.txt", IfMatch='"nope"')[:2] == (
        "PreconditionFailed",
        412,
    )
    assert error_of(c.get_object, Bucket="private", Key="cond.txt", IfNoneMatch=etag)[:2] == ("304", 304)
    future = datetime.now(UTC) + timedelta(days=1)
    past = datetime.now(UTC) - timedelta(days=1)
    assert error_of(c.get_object, Bucket="private", Key="cond.txt", IfModifiedSince=future)[:2] == (
        "304",
        304,
    )
    assert error_of(c.get_object, Bucket="private", Key="cond.txt", IfUnmodifiedSince=past)[:2] == (
        "PreconditionFailed",
        412,
    )
    assert c.head_object(Bucket="private", Key="cond.txt", IfModifiedSince=past)["ContentLength"] == 2


def test_response_header_overrides(s3):
    c = s3.client()
    c.put_object(Bucket="private", Key="over.bin", Body=b"x", ContentType="application/octet-stream")
    response = c.get_object(
        Bucket="private",
        Key="over.bin",
        ResponseContentType="text/plain",
        ResponseContentDisposition='attachment; filename="r.txt"',
        ResponseCacheControl="no-cache",
    )
    assert response["ContentType"] == "text/plain"
    assert response["ContentDisposition"] == 'attachment; filename="r.txt"'
    assert response["CacheControl"] == "no-cache"


def test_copies_with_the_metadata_directive(s3):
    c = s3.client()
    bucket = s3.bucket("copy")
    src = c.put_object(
        Bucket="private", Key="src.txt", Body=b"payload", ContentType="text/plain", Metadata={"a": "1"}
    )
    copied = c.copy_object(Bucket=bucket, Key="dst.txt", CopySource={"Bucket": "private", "Key": "src.txt"})
    assert copied["CopyObjectResult"]["ETag"] == src["ETag"]
    head = c.head_object(Bucket=bucket, Key="dst.txt")
    assert (head["ContentType"], head["Metadata"]) == ("text/plain", {"a": "1"})
    c.copy_object(
        Bucket=bucket,
        Key="dst.txt",
        CopySource="/private/src.txt",
        MetadataDirective="REPLACE",
        Metadata={"b": "2"},
        ContentType="text/csv",
    )
    head = c.head_object(Bucket=bucket, Key="dst.txt")
    assert (head["ContentType"], head["Metadata"]) == ("text/csv", {"b": "2"})
    assert c.get_object(Bucket=bucket, Key="dst.txt")["Body"].read() == b"payload"
    # onto itself: only to replace the metadata (rclone's sync updates mtimes so)
    assert error_of(
        c.copy_object, Bucket=bucket, Key="dst.txt", CopySource={"Bucket": bucket, "Key": "dst.txt"}
    )[:2] == (
        "InvalidRequest",
        400,
    )
    c.copy_object(
        Bucket=bucket,
        Key="dst.txt",
        CopySource={"Bucket": bucket, "Key": "dst.txt"},
        MetadataDirective="REPLACE",
        Metadata={"mtime": "1577836800"},
    )
    head = c.head_object(Bucket=bucket, Key="dst.txt")
    assert head["Metadata"] == {"mtime": "1577836800"} and head["ContentType"] == "binary/octet-stream"
    assert c.get_object(Bucket=bucket, Key="dst.txt")["Body"].read() == b"payload"
    assert error_of(
        c.copy_object, Bucket=bucket, Key="x", CopySource={"Bucket": "private", "Key": "missing"}
    )[:2] == (
        "NoSuchKey",
        404,
    )


def test_deletes(s3):
    c = s3.client()
    bucket = s3.bucket("del")
    for key in ("a", "b", "c"):
        c.put_object(Bucket=bucket, Key=key, Body=b"x")
    assert c.delete_object(Bucket=bucket, Key="a")["ResponseMetadata"]["HTTPStatusCode"] == 204
    assert (
        c.delete_object(Bucket=bucket, Key="a")["ResponseMetadata"]["HTTPStatusCode"] == 204
    )  # missing: 204
    result = c.delete_objects(
        Bucket=bucket, Delete={"Objects": [{"Key": "b"}, {"Key": "missing"}, {"Key": "a//b"}]}
    )
    assert sorted(d["Key"] for d in result["Deleted"]) == ["b", "missing"]
    assert [(e["Key"], e["Code"]) for e in result["Errors"]] == [("a//b", "InvalidArgument")]
    quiet = c.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": "c"}], "Quiet": True})
    assert "Deleted" not in quiet and "Errors" not in quiet
    assert c.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


# -- multipart -----------------------------------------------------------------------------------------
def test_multipart_by_hand(s3):
    c = s3.client()
    bucket = s3.bucket("mpu")
    parts_data = [os.urandom(5 * MiB), os.urandom(5 * MiB), b"tail"]
    upload = c.create_multipart_upload(
        Bucket=bucket, Key="big.bin", ContentType="application/x-test", Metadata={"m": "1"}
    )
    uid = upload["UploadId"]
    etags = {}
    for number in (3, 1, 2):  # out of order, as concurrent clients send them
        etags[number] = c.upload_part(
            Bucket=bucket, Key="big.bin", UploadId=uid, PartNumber=number, Body=parts_data[number - 1]
        )["ETag"]
    listed = c.list_parts(Bucket=bucket, Key="big.bin", UploadId=uid)
    assert [(p["PartNumber"], p["ETag"], p["Size"]) for p in listed["Parts"]] == [
        (n, etags[n], len(parts_data[n - 1])) for n in (1, 2, 3)
    ]
    page = c.list_parts(Bucket=bucket, Key="big.bin", UploadId=uid, MaxParts=2)
    assert page["IsTruncated"] and page["NextPartNumberMarker"] == 2
    assert [u["UploadId"] for u in c.list_multipart_uploads(Bucket=bucket)["Uploads"]] == [uid]
    done = c.complete_multipart_upload(
        Bucket=bucket,
        Key="big.bin",
        UploadId=uid,
        MultipartUpload={"Parts": [{"PartNumber": n, "ETag": etags[n]} for n in (1, 2, 3)]},
    )
    combined = hashlib.md5(b"".join(hashlib.md5(p).digest() for p in parts_data)).hexdigest()
    assert done["ETag"] == f'"{combined}-3"'
    head = c.head_object(Bucket=bucket, Key="big.bin")
    assert (head["ContentType"], head["Metadata"], head["ContentLength"]) == (
        "application/x-test",
        {"m": "1"},
        10 * MiB + 4,
    )
    assert c.get_object(Bucket=bucket, Key="big.bin", Range=f"bytes={5 * MiB - 2}-{5 * MiB + 1}")[
        "Body"
    ].read() == (parts_data[0][-2:] + parts_data[1][:2])
    assert error_of(c.list_parts, Bucket=bucket, Key="big.bin", UploadId=uid)[:2] == ("NoSuchUpload", 404)
    assert c.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def test_list_multipart_uploads_pages_in_key_then_start_order_with_folders(s3):
    c = s3.client()
    bucket = s3.bucket("mplist")
    keys = ["a.bin", "a.bin", "b/1.bin", "b/2.bin", "c.bin", "c.bin", "c.bin", "d/e/f.bin"]
    started = [(k, c.create_multipart_upload(Bucket=bucket, Key=k)["UploadId"]) for k in keys]
    expected = sorted(started, key=lambda kv: kv[0])  # key order; a key's uploads oldest first

    paginator = c.get_paginator("list_multipart_uploads")
    pages = list(paginator.paginate(Bucket=bucket, PaginationConfig={"PageSize": 3}))
    assert len(pages) == 3 and all(p["IsTruncated"] for p in pages[:-1]) and not pages[-1]["IsTruncated"]
    assert pages[0]["NextKeyMarker"] == "b/1.bin"
    assert pages[0]["NextUploadIdMarker"] == started[2][1]
    seen = [(u["Key"], u["UploadId"]) for p in pages for u in p.get("Uploads", [])]
    assert seen == expected

    # one key's uploads split across pages: the upload-id marker resumes inside the key
    first = c.list_multipart_uploads(Bucket=bucket, Prefix="c", MaxUploads=2)
    assert [u["UploadId"] for u in first["Uploads"]] == [started[4][1], started[5][1]]
    rest = c.list_multipart_uploads(
        Bucket=bucket,
        Prefix="c",
        KeyMarker=first["NextKeyMarker"],
        UploadIdMarker=first["NextUploadIdMarker"],
    )
    assert [u["UploadId"] for u in rest["Uploads"]] == [started[6][1]] and not rest["IsTruncated"]

    # folders: b/ and d/ fold into common prefixes, each one entry of a page, never repeated
    folded = list(paginator.paginate(Bucket=bucket, Delimiter="/", PaginationConfig={"PageSize": 2}))
    entries = [
        [u["Key"] for u in p.get("Uploads", [])] + [cp["Prefix"] for cp in p.get("CommonPrefixes", [])]
        for p in folded
    ]
    flat = sorted(x for e in entries for x in e)
    assert flat == ["a.bin", "a.bin", "b/", "c.bin", "c.bin", "c.bin", "d/"]
    assert all(len(e) <= 2 for e in entries)
    assert c.list_multipart_uploads(Bucket=bucket, Prefix="b/", Delimiter="/")["Uploads"] == [
        u for u in c.list_multipart_uploads(Bucket=bucket, Prefix="b/")["Uploads"]
    ]
    assert c.list_multipart_uploads(Bucket=bucket, Prefix="a//").get("Uploads", []) == []
    assert c.list_multipart_uploads(Bucket=bucket, MaxUploads=0).get("Uploads", []) == []
    for key, uid in started:
        c.abort_multipart_upload(Bucket=bucket, Key=key, UploadId=uid)


def test_multipart_refusals(s3):
    c = s3.client()
    bucket = s3.bucket("mpx")
    uid = c.create_multipart_upload(Bucket=bucket, Key="k")["UploadId"]
    e1 = c.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=1, Body=b"small")["ETag"]
    e2 = c.upload_part(Bucket=bucket, Key="k", UploadId=uid, PartNumber=2, Body=b"last")["ETag"]

    def complete(parts):
        return error_of(
            c.complete_multipart_upload,
            Bucket=bucket,
            Key="k",
            UploadId=uid,
            MultipartUpload={"Parts": parts},
        )[:2]

    assert complete([{"PartNumber": 1, "ETag": e1}, {"PartNumber": 2, "ETag": e2}]) == ("EntityTooSmall", 400)
    assert complete([{"PartNumber": 2, "ETag": e2}, {"PartNumber": 1, "ETag": e1}]) == (
        "InvalidPartOrder",
        400,
    )
    assert complete([{"PartNumber": 1, "ETag": '"00000000000000000000000000000000"'}]) == ("InvalidPart", 400)
    assert complete([{"PartNumber": 7, "ETag": e1}]) == ("InvalidPart", 400)
    assert error_of(c.upload_part, Bucket=bucket, Key="k", UploadId=uid, PartNumber=10001, Body=b"x")[:2] == (
        "InvalidArgument",
        400,
    )
    assert error_of(c.upload_part, Bucket=bucket, Key="k", UploadId="0" * 32, PartNumber=1, Body=b"x")[
        :2
    ] == (
        "NoSuchUpload",
        404,
    )
    # one small part is a whole object
    done = c.complete_multipart_upload(
        Bucket=bucket, Key="k", UploadId=uid, MultipartUpload={"Parts": [{"PartNumber": 2, "ETag": e2}]}
    )
    assert done["ETag"].endswith('-1"') and c.get_object(Bucket=bucket, Key="k")["Body"].read() == b"last"
    uid = c.create_multipart_upload(Bucket=bucket, Key="aborted")["UploadId"]
    c.upload_part(Bucket=bucket, Key="aborted", UploadId=uid, PartNumber=1, Body=b"x")
    assert (
        c.abort_multipart_upload(Bucket=bucket, Key="aborted", UploadId=uid)["ResponseMetadata"][
            "HTTPStatusCode"
        ]
        == 204
    )
    assert error_of(c.list_parts, Bucket=bucket, Key="aborted", UploadId=uid)[:2] == ("NoSuchUpload", 404)


def test_upload_part_copy(s3):
    c = s3.client()
    bucket = s3.bucket("mpc")
    source = os.urandom(6 * MiB)
    c.put_object(Bucket=bucket, Key="source.bin", Body=source)
    uid = c.create_multipart_upload(Bucket=bucket, Key="joined.bin")["UploadId"]
    p1 = c.upload_part_copy(
        Bucket=bucket,
        Key="joined.bin",
        UploadId=uid,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "source.bin"},
        CopySourceRange=f"bytes=0-{5 * MiB - 1}",
    )["CopyPartResult"]
    p2 = c.upload_part_copy(
        Bucket=bucket, Key="joined.bin", UploadId=uid, PartNumber=2, CopySource=f"{bucket}/source.bin"
    )["CopyPartResult"]
    assert p1["ETag"] == f'"{hashlib.md5(source[: 5 * MiB]).hexdigest()}"'
    c.complete_multipart_upload(
        Bucket=bucket,
        Key="joined.bin",
        UploadId=uid,
        MultipartUpload={
            "Parts": [{"PartNumber": 1, "ETag": p1["ETag"]}, {"PartNumber": 2, "ETag": p2["ETag"]}]
        },
    )
    assert c.get_object(Bucket=bucket, Key="joined.bin")["Body"].read() == source[: 5 * MiB] + source
    uid = c.create_multipart_upload(Bucket=bucket, Key="bad.bin")["UploadId"]
    assert error_of(
        c.upload_part_copy,
        Bucket=bucket,
        Key="bad.bin",
        UploadId=uid,
        PartNumber=1,
        CopySource={"Bucket": bucket, "Key": "source.bin"},
        CopySourceRange=f"bytes={7 * MiB}-{8 * MiB}",
    )[:2] == ("InvalidArgument", 400)


def test_upload_and_download_of_more_than_100_mb(s3, tmp_path):
    """The issue's case: a 110 MB file through s3transfer (14 concurrent 8 MiB parts; ranged GETs with If-Match)."""
    c = s3.client()
    data = os.urandom(1 << 20) * 110  # 110 MiB; parts differ anyway by position in the file
    source = tmp_path / "big.bin"
    source.write_bytes(data)
    c.upload_file(str(source), "private", "large/big.bin")
    head = c.head_object(Bucket="private", Key="large/big.bin")
    assert head["ContentLength"] == len(data) and head["ETag"].endswith('-14"')
    target = tmp_path / "back.bin"
    c.download_file("private", "large/big.bin", str(target), Config=TransferConfig(max_concurrency=4))
    assert hashlib.md5(target.read_bytes()).digest() == hashlib.md5(data).digest()
    c.delete_object(Bucket="private", Key="large/big.bin")


# -- checksums -----------------------------------------------------------------------------------------
def test_checksums_are_verified_stored_and_returned_on_whole_reads_only(s3):
    c = s3.client()
    body = b"checksummed " * 100
    put = c.put_object(Bucket="private", Key="sum/crc32.txt", Body=body)  # boto3's default: CRC32
    assert put["ChecksumCRC32"]
    head = c.head_object(Bucket="private", Key="sum/crc32.txt", ChecksumMode="ENABLED")
    assert head["ChecksumCRC32"] == put["ChecksumCRC32"]
    got = c.get_object(Bucket="private", Key="sum/crc32.txt", ChecksumMode="ENABLED")
    assert got["ChecksumCRC32"] == put["ChecksumCRC32"] and got["Body"].read() == body
    ranged = c.get_object(Bucket="private", Key="sum/crc32.txt", ChecksumMode="ENABLED", Range="bytes=0-3")
    assert "ChecksumCRC32" not in ranged and ranged["Body"].read() == b"chec"
    for algorithm in ("SHA256", "SHA1"):
        put = c.put_object(Bucket="private", Key=f"sum/{algorithm}", Body=body, ChecksumAlgorithm=algorithm)
        assert (
            put[f"Checksum{algorithm}"]
            == base64.b64encode(hashlib.new(algorithm.lower(), body).digest()).decode()
        )
    crc32c = base64.b64encode(__import__("google_crc32c").value(body).to_bytes(4, "big")).decode()
    put = c.put_object(Bucket="private", Key="sum/crc32c", Body=body, ChecksumCRC32C=crc32c)
    assert put["ChecksumCRC32C"] == crc32c
    assert error_of(c.put_object, Bucket="private", Key="sum/bad", Body=body, ChecksumCRC32C="AAAAAA==")[
        :2
    ] == (
        "BadDigest",
        400,
    )
    assert error_of(
        c.put_object, Bucket="private", Key="sum/nvme", Body=body, ChecksumCRC64NVME="AAAAAAAAAAA="
    )[:2] == (
        "InvalidRequest",
        400,
    )
    plain = s3.client(
        request_checksum_calculation="when_required", response_checksum_validation="when_required"
    )
    assert "ChecksumCRC32" not in plain.put_object(Bucket="private", Key="sum/plain", Body=body)
    assert plain.get_object(Bucket="private", Key="sum/plain")["Body"].read() == body


# -- presigned URLs ------------------------------------------------------------------------------------
def test_presigned_urls(s3):
    c = s3.client()
    bucket = s3.bucket("pre")
    put_url = c.generate_presigned_url(
        "put_object",
        Params={"Bucket": bucket, "Key": "p/x.txt", "Metadata": {"number-of-parts": "1"}},
        ExpiresIn=600,
    )
    assert (
        requests.put(
            put_url, data=b"presigned", headers={"x-amz-meta-number-of-parts": "1"}, timeout=10
        ).status_code
        == 200
    )
    # a signed header that is not sent: refused, nothing written
    refused = requests.put(put_url.replace("x.txt", "y.txt"), data=b"nope", timeout=10)
    assert refused.status_code == 403
    get_url = c.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p/x.txt"}, ExpiresIn=600
    )
    got = requests.get(get_url, timeout=10)
    assert (got.status_code, got.content, got.headers["x-amz-meta-number-of-parts"]) == (
        200,
        b"presigned",
        "1",
    )
    head_url = c.generate_presigned_url(
        "head_object", Params={"Bucket": bucket, "Key": "p/x.txt"}, ExpiresIn=600
    )
    assert requests.head(head_url, timeout=10).headers["Content-Length"] == "9"
    list_url = c.generate_presigned_url(
        "list_objects_v2", Params={"Bucket": bucket, "Prefix": "p/"}, ExpiresIn=600
    )
    listing = requests.get(list_url, timeout=10)
    assert listing.status_code == 200 and "<Key>p/x.txt</Key>" in listing.text
    tampered = requests.get(get_url.replace("p/x.txt", "p/y.txt"), timeout=10)
    assert tampered.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in tampered.text
    with mock.patch.object(
        botocore.auth, "get_current_datetime", lambda: datetime.now(UTC) - timedelta(hours=2)
    ):
        old = c.generate_presigned_url(
            "get_object", Params={"Bucket": bucket, "Key": "p/x.txt"}, ExpiresIn=3600
        )
    expired = requests.get(old, timeout=10)
    assert expired.status_code == 403 and "Request has expired" in expired.text
    week = c.generate_presigned_url(
        "get_object", Params={"Bucket": bucket, "Key": "p/x.txt"}, ExpiresIn=604801
    )
    too_long = requests.get(week, timeout=10)
    assert too_long.status_code == 400 and "AuthorizationQueryParametersError" in too_long.text
    sigv2 = boto3.client(
        "s3",
        endpoint_url=s3.url,
        aws_access_key_id=s3.key.access_key_id,
        aws_secret_access_key=s3.key.secret_access_key,
        region_name="us-east-1",
    ).generate_presigned_url("get_object", Params={"Bucket": bucket, "Key": "p/x.txt"})
    assert "AWSAccessKeyId=" in sigv2
    v2 = requests.get(sigv2, timeout=10)
    assert v2.status_code == 400 and "s3v4" in v2.text
    delete_url = c.generate_presigned_url(
        "delete_object", Params={"Bucket": bucket, "Key": "p/x.txt"}, ExpiresIn=60
    )
    assert requests.delete(delete_url, timeout=10).status_code == 204
    assert c.list_objects_v2(Bucket=bucket)["KeyCount"] == 0


# -- authentication ------------------------------------------------------------------------------------
def test_authentication_failures(s3):
    good = s3.key
    wrong = type(good)(
        good.access_key_id, good.secret_access_key[:-1] + ("A" if good.secret_access_key[-1] != "A" else "B")
    )
    code, status, error = error_of(s3.client(wrong).list_objects_v2, Bucket="private")
    assert (code, status) == ("SignatureDoesNotMatch", 403)
    assert error["StringToSign"].startswith("AWS4-HMAC-SHA256\n") and good.secret_access_key not in str(error)
    unknown = type(good)("EK" + "A" * 18, good.secret_access_key)
    assert error_of(s3.client(unknown).list_buckets)[:2] == ("InvalidAccessKeyId", 403)
    with_token = boto3.client(
        "s3",
        endpoint_url=s3.url,
        aws_access_key_id=good.access_key_id,
        aws_secret_access_key=good.secret_access_key,
        aws_session_token="not-a-session",
        region_name="us-east-1",
        config=Config(signature_version="s3v4", retries={"max_attempts": 1}),
    )
    assert error_of(with_token.list_buckets)[:2] == ("InvalidToken", 403)
    for skew in (timedelta(minutes=16), -timedelta(minutes=16)):
        with mock.patch.object(
            botocore.auth, "get_current_datetime", lambda skew=skew: datetime.now(UTC) + skew
        ):
            code, status, error = error_of(s3.client().list_buckets)
        assert (code, status) == ("RequestTimeTooSkewed", 403) and error[
            "MaxAllowedSkewMilliseconds"
        ] == "900000"


def test_revoked_keys_and_tokens_stop_at_once(s3):
    from entrepot.core import access_keys

    token = s3.server.token_for(can_manage_spaces=True)
    key = s3.new_key(token)
    c = s3.client(key)
    assert c.list_buckets()["Buckets"]
    principal = auth.authenticate(s3.server.services.catalog, token)
    access_keys.revoke(s3.server.services, principal, key.access_key_id)
    assert error_of(c.list_buckets)[:2] == ("InvalidAccessKeyId", 403)
    token2 = s3.server.token_for(can_manage_spaces=True)
    key2 = s3.new_key(token2)
    assert s3.client(key2).list_buckets()["Buckets"]
    auth.revoke_token(
        s3.server.services.catalog, auth.authenticate(s3.server.services.catalog, token2).token_id
    )
    assert error_of(s3.client(key2).list_buckets)[:2] == ("InvalidAccessKeyId", 403)


def test_a_key_has_exactly_its_tokens_permissions(s3):
    token = s3.server.token_for(space_permissions={"public": "read"})
    c = s3.client(s3.new_key(token))
    s3.client().put_object(Bucket="public", Key="perm.txt", Body=b"r")
    assert c.get_object(Bucket="public", Key="perm.txt")["Body"].read() == b"r"
    assert error_of(c.put_object, Bucket="public", Key="perm.txt", Body=b"w")[:2] == ("AccessDenied", 403)
    assert error_of(c.get_object, Bucket="private", Key="perm.txt")[:2] == ("AccessDenied", 403)
    assert error_of(c.create_bucket, Bucket="nope-bucket")[:2] == ("AccessDenied", 403)
    assert [b["Name"] for b in c.list_buckets()["Buckets"]] == ["public"]


def test_a_refused_upload_leaves_the_connection_usable(s3):
    """Refused before its body: answered with Connection: close, so the next request works."""
    wrong = type(s3.key)(s3.key.access_key_id, "x" * 40)
    bad = s3.client(wrong)
    for _ in range(3):
        assert error_of(bad.put_object, Bucket="private", Key="r", Body=os.urandom(256 * 1024))[:2] == (
            "SignatureDoesNotMatch",
            403,
        )
    c = s3.client()
    assert error_of(c.put_object, Bucket="nosuch", Key="r", Body=b"x" * 100_000)[:2] == ("NoSuchBucket", 404)
    started = time.perf_counter()
    c.put_object(Bucket="private", Key="after-refusal", Body=b"ok")
    assert time.perf_counter() - started < 5
    raw = httpx.put(
        f"{s3.url}/private/raw",
        content=b"x" * 10,
        headers={"Authorization": f"AWS4-HMAC-SHA256 Credential={s3.key.access_key_id}/x"},
    )
    assert raw.status_code == 400 and raw.headers["connection"] == "close"


def test_a_small_put_does_not_wait_for_100_continue(s3):
    c = s3.client()
    c.put_object(Bucket="private", Key="warm", Body=b"1")
    started = time.perf_counter()
    c.put_object(Bucket="private", Key="one-byte", Body=b"1")
    assert time.perf_counter() - started < 0.5  # botocore waits 1 s for a 100 Continue that never comes


# -- listeners, addressing, anonymous access -----------------------------------------------------------
def test_the_s3_listener_serves_anonymous_reads_of_public_spaces_only(s3):
    s3.client().put_object(Bucket="public", Key="open.txt", Body=b"hello")
    s3.client().put_object(Bucket="private", Key="closed.txt", Body=b"secret")
    anon = boto3.client(
        "s3", endpoint_url=s3.s3_url, region_name="us-east-1", config=Config(signature_version=UNSIGNED)
    )
    assert anon.get_object(Bucket="public", Key="open.txt")["Body"].read() == b"hello"
    assert "open.txt" in [o["Key"] for o in anon.list_objects_v2(Bucket="public")["Contents"]]
    assert error_of(anon.get_object, Bucket="private", Key="closed.txt")[:2] == ("AccessDenied", 403)
    assert error_of(anon.put_object, Bucket="public", Key="w", Body=b"w")[:2] == ("AccessDenied", 403)
    assert error_of(anon.list_buckets)[:2] == ("AccessDenied", 403)
    assert error_of(anon.get_object, Bucket="public", Key="open.txt", ResponseContentType="text/html")[
        :2
    ] == (
        "InvalidRequest",
        400,
    )
    # signed requests work on the listener too
    assert s3.client(url=s3.s3_url).get_object(Bucket="private", Key="closed.txt")["Body"].read() == b"secret"
    # on the shared port an unsigned request is not S3: the other faces answer it
    assert httpx.get(f"{s3.url}/public/open.txt").headers["content-type"].startswith("application/json")


def test_virtual_host_style(s3):
    s3.client().put_object(Bucket="public", Key="vhost/a.txt", Body=b"v")
    real = socket.getaddrinfo

    def resolve(host, *args, **kwargs):
        if isinstance(host, str) and host.endswith(".s3.localhost"):
            host = "127.0.0.1"
        return real(host, *args, **kwargs)

    port = s3.s3_url.rsplit(":", 1)[1]
    with mock.patch("socket.getaddrinfo", resolve):
        c = s3.client(url=f"http://s3.localhost:{port}", s3={"addressing_style": "virtual"})
        assert c.get_object(Bucket="public", Key="vhost/a.txt")["Body"].read() == b"v"
        c.put_object(Bucket="private", Key="vhost/b.txt", Body=b"w")
        assert [o["Key"] for o in c.list_objects_v2(Bucket="private", Prefix="vhost/")["Contents"]] == [
            "vhost/b.txt"
        ]


def test_keboola_branch_paths_are_not_rewritten_for_s3(s3):
    c = s3.client()
    c.create_bucket(Bucket="v2")
    c.put_object(Bucket="v2", Key="storage/branch/default/x.txt", Body=b"branch")
    assert c.get_object(Bucket="v2", Key="storage/branch/default/x.txt")["Body"].read() == b"branch"
    assert [o["Key"] for o in c.list_objects_v2(Bucket="v2")["Contents"]] == ["storage/branch/default/x.txt"]


def test_resource_api_as_keboola_uses_it(s3, tmp_path, monkeypatch):
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", s3.url)
    resource = boto3.resource(
        "s3",
        aws_access_key_id=s3.key.access_key_id,
        aws_secret_access_key=s3.key.secret_access_key,
        region_name="us-east-1",
    )
    source = tmp_path / "in.csv"
    source.write_bytes(b"a,b\n1,2\n" * 1000)
    with open(source, "rb") as body:
        resource.Object("private", "kbc/in.csv").put(
            ACL="private",
            Body=body,
            ContentDisposition="attachment; filename=in.csv;",
            ServerSideEncryption="AES256",
        )
    resource.Bucket("private").download_file("kbc/in.csv", str(tmp_path / "out.csv"))
    assert (tmp_path / "out.csv").read_bytes() == source.read_bytes()
    assert resource.Object("private", "kbc/in.csv").content_disposition == "attachment; filename=in.csv;"


# -- one object, every face ----------------------------------------------------------------------------
def test_objects_cross_between_the_spaces_api_and_s3(s3):
    headers = s3.server.headers()
    native = httpx.put(
        f"{s3.url}/spaces/v1/default/private/objects/cross/native.txt",
        content=b"from spaces",
        headers=headers,
    )
    assert native.status_code == 201
    c = s3.client()
    got = c.get_object(Bucket="private", Key="cross/native.txt")
    assert got["Body"].read() == b"from spaces" and got["ETag"] == native.headers["etag"]
    c.put_object(Bucket="private", Key="cross/s3.txt", Body=b"from s3", Metadata={"who": "boto3"})
    back = httpx.get(f"{s3.url}/spaces/v1/default/private/objects/cross/s3.txt", headers=headers)
    assert back.content == b"from s3" and back.headers["x-entrepot-meta-who"] == "boto3"
    listing = httpx.get(
        f"{s3.url}/spaces/v1/default/private/objects", params={"prefix": "cross/"}, headers=headers
    )
    assert sorted(o["key"] for o in listing.json()["objects"]) == ["cross/native.txt", "cross/s3.txt"]
    c.delete_object(Bucket="private", Key="cross/native.txt")
    assert (
        httpx.get(f"{s3.url}/spaces/v1/default/private/objects/cross/native.txt", headers=headers).status_code
        == 404
    )


def test_errors_are_xml_with_request_ids(s3):
    response = httpx.get(
        f"{s3.url}/nosuchbucket/x",
        headers={
            "Authorization": "AWS4-HMAC-SHA256 Credential=EKAAAAAAAAAAAAAAAAAA/20250101/us-east-1/s3/aws4_request, "
            "SignedHeaders=host, Signature=" + "0" * 64,
            "x-amz-date": datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ"),
            "x-amz-content-sha256": "UNSIGNED-PAYLOAD",
        },
    )
    assert response.status_code == 400 and response.headers["content-type"] == "application/xml"
    assert response.headers["x-amz-request-id"] and "<RequestId>" in response.text
    assert "<Code>AuthorizationHeaderMalformed</Code>" in response.text
    s3.client().put_object(Bucket="private", Key="metrics.txt", Body=b"m")
    metrics = httpx.get(f"{s3.url}/metrics").text  # S3 requests are labelled by operation
    assert 'route="s3:PutObject"' in metrics
