"""The S3 face's pure pieces: XML bodies (bounded, no DTDs), encoding-type=url, dates, the error
mapping from core errors, addressing, routing by subresource, and what counts as an S3 request."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from entrepot.core.errors import (
    AlreadyExists,
    Conflict,
    InvalidInput,
    NotFound,
    NotSupported,
    PayloadTooLarge,
    PermissionDenied,
    Unauthenticated,
    Unavailable,
)
from entrepot.core.objects.objects import decode_content_md5, digest_mismatch, validate_object_key
from entrepot.faces.objects_http import parse_range
from entrepot.faces.s3.addressing import bucket_ref, target
from entrepot.faces.s3.dispatch import is_s3_request
from entrepot.faces.s3.errors import S3Error, from_core
from entrepot.faces.s3.router import route
from entrepot.faces.s3.wire import S3Request
from entrepot.faces.s3.xmlio import iso, parse_complete, parse_create_bucket, parse_delete, url_encode


def code(exc: BaseException) -> str:
    assert isinstance(exc, S3Error)
    return exc.code


# -- XML ---------------------------------------------------------------------------------------------
def test_delete_bodies_parse_with_or_without_a_namespace():
    plain = b"<Delete><Quiet>true</Quiet><Object><Key>a&amp;b</Key></Object><Object><Key>c d</Key></Object></Delete>"
    assert parse_delete(plain).keys == ["a&b", "c d"] and parse_delete(plain).quiet
    spaced = (
        b'<?xml version="1.0"?><Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b"<Object><Key>k</Key><VersionId>null</VersionId></Object></Delete>"
    )
    parsed = parse_delete(spaced)
    assert parsed.keys == ["k"] and not parsed.quiet


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<Delete><Object><Key>&lol2;</Key></Object></Delete>"""


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (BILLION_LAUGHS, "MalformedXML"),
        (b'<!DOCTYPE x SYSTEM "file:///etc/passwd"><Delete/>', "MalformedXML"),
        (b"<Delete><Object><Key>x</Key></Object>", "MalformedXML"),
        (b"<Delete></Delete>", "MalformedXML"),
        (b"<Other><Object><Key>x</Key></Object></Other>", "MalformedXML"),
        (b"<Delete><Object><VersionId>null</VersionId></Object></Delete>", "MalformedXML"),
        (b"<Delete><Object><Key>x</Key><VersionId>3HL4</VersionId></Object></Delete>", "NotImplemented"),
        (b"<Delete>" + b"<Object><Key>k</Key></Object>" * 1001 + b"</Delete>", "MalformedXML"),
    ],
)
def test_bad_delete_bodies(body, expected):
    with pytest.raises(S3Error) as caught:
        parse_delete(body)
    assert caught.value.code == expected


def test_complete_bodies_keep_etags_and_checksums():
    body = (
        b'<CompleteMultipartUpload xmlns="http://s3.amazonaws.com/doc/2006-03-01/">'
        b'<Part><ETag>"d21a"</ETag><PartNumber>1</PartNumber><ChecksumCRC32>eoczaA==</ChecksumCRC32></Part>'
        b"<Part><PartNumber>2</PartNumber><ETag>abc</ETag></Part></CompleteMultipartUpload>"
    )
    parts = parse_complete(body)
    assert [(p.number, p.etag, p.checksums) for p in parts] == [
        (1, '"d21a"', {"crc32": "eoczaA=="}),
        (2, "abc", {}),
    ]


@pytest.mark.parametrize(
    "body",
    [
        b"<CompleteMultipartUpload/>",
        b"<CompleteMultipartUpload><Part><PartNumber>x</PartNumber><ETag>e</ETag></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload><Part><PartNumber>1</PartNumber></Part></CompleteMultipartUpload>",
        b"<CompleteMultipartUpload>"
        + b"<Part><PartNumber>1</PartNumber><ETag>e</ETag></Part>" * 10001
        + b"</CompleteMultipartUpload>",
    ],
)
def test_bad_complete_bodies(body):
    with pytest.raises(S3Error) as caught:
        parse_complete(body)
    assert caught.value.code == "MalformedXML"


def test_create_bucket_configuration():
    assert parse_create_bucket(b"") is None
    body = (
        b"<CreateBucketConfiguration><LocationConstraint>eu-central-1</LocationConstraint>"
        b"</CreateBucketConfiguration>"
    )
    assert parse_create_bucket(body) == "eu-central-1"


def test_url_encoding_of_listings_escapes_plus_and_everything_not_unreserved():
    assert url_encode("a+b c/é%~_.-") == "a%2Bb%20c/%C3%A9%25~_.-"


def test_xml_dates_have_zero_milliseconds_in_utc():
    moment = datetime(2025, 6, 1, 14, 0, 0, 123456, tzinfo=timezone(timedelta(hours=2)))
    assert iso(moment) == "2025-06-01T12:00:00.000Z"


# -- error mapping ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("error", "s3_code", "status"),
    [
        (NotFound("x", code="spaces.notFound"), "NoSuchBucket", 404),
        (NotFound("x", code="projects.notFound"), "NoSuchBucket", 404),
        (NotFound("x", code="objects.notFound"), "NoSuchKey", 404),
        (NotFound("x", code="uploads.notFound"), "NoSuchUpload", 404),
        (Unauthenticated("x", code="s3.invalidAccessKeyId"), "InvalidAccessKeyId", 403),
        (Unauthenticated("x", code="s3.invalidToken"), "InvalidToken", 403),
        (Unauthenticated("x", code="s3.expiredToken"), "ExpiredToken", 400),
        (Unauthenticated("reading needs a token"), "AccessDenied", 403),
        (PermissionDenied("x"), "AccessDenied", 403),
        (Conflict("x", code="spaces.expired"), "AccessDenied", 403),
        (Conflict("x", code="spaces.default"), "AccessDenied", 403),
        (InvalidInput("x", code="spaces.invalidName"), "InvalidBucketName", 400),
        (AlreadyExists("x", code="spaces.alreadyExists"), "BucketAlreadyOwnedByYou", 409),
        (Conflict("x", code="spaces.notEmpty"), "BucketNotEmpty", 409),
        (InvalidInput("x", code="objects.invalidKey"), "InvalidArgument", 400),
        (PayloadTooLarge("x", code="objects.metadataTooLarge"), "MetadataTooLarge", 400),
        (InvalidInput("x", code="request.incomplete"), "IncompleteBody", 400),
        (InvalidInput("x", code="uploads.badOrder"), "InvalidPartOrder", 400),
        (InvalidInput("x", code="uploads.badPart"), "InvalidPart", 400),
        (InvalidInput("x", code="uploads.partTooSmall"), "EntityTooSmall", 400),
        (InvalidInput("x", code="uploads.empty"), "MalformedXML", 400),
        (Conflict("x", code="uploads.changed"), "OperationAborted", 409),
        (InvalidInput("x", code="objects.checksumUnsupported"), "InvalidRequest", 400),
        (PayloadTooLarge("x"), "EntityTooLarge", 400),
        (NotSupported("x"), "NotImplemented", 501),
        (Unavailable("x"), "ServiceUnavailable", 503),
        (digest_mismatch("x", "md5"), "BadDigest", 400),
        (digest_mismatch("x", "sha256"), "XAmzContentSHA256Mismatch", 400),
        (digest_mismatch("x", "checksum"), "BadDigest", 400),
    ],
)
def test_core_errors_map_to_s3_codes(error, s3_code, status):
    mapped = from_core(error)
    assert (mapped.code, mapped.status) == (s3_code, status)


def test_digest_errors_keep_the_spaces_code_and_tell_s3_apart():
    with pytest.raises(InvalidInput) as caught:
        decode_content_md5("not base64!")
    assert caught.value.code == "objects.badDigest"  # what the spaces face has always answered
    assert from_core(caught.value).code == "InvalidDigest"


def test_key_errors_keep_the_core_message_and_long_keys_say_so():
    with pytest.raises(InvalidInput) as caught:
        validate_object_key("a/../b")
    mapped = from_core(caught.value)
    assert mapped.code == "InvalidArgument" and ".." in mapped.message
    with pytest.raises(InvalidInput) as caught:
        validate_object_key("k" * 1025)
    assert from_core(caught.value).code == "KeyTooLongError"


def test_unsatisfiable_ranges_carry_content_range():
    with pytest.raises(Exception) as caught:
        parse_range("bytes=10-", 5)
    mapped = from_core(caught.value)  # type: ignore[arg-type]
    assert (mapped.code, mapped.status, mapped.headers) == (
        "InvalidRange",
        416,
        {"Content-Range": "bytes */5"},
    )


def test_internal_errors_never_show_their_message():
    from entrepot.core.errors import EntrepotError

    mapped = from_core(EntrepotError("/secret/path/catalog.sqlite is locked"))
    assert mapped.code == "InternalError" and "/secret" not in mapped.message


# -- addressing -------------------------------------------------------------------------------------------
def test_path_style_keys_are_decoded_once_and_keep_their_slashes():
    t = target(b"/bkt/a%20b%2Bc//d%2541", "127.0.0.1:9000", ["s3.localhost"])
    assert (t.bucket, t.key, t.vhost) == ("bkt", b"a b+c//d%41", False)
    assert target(b"/bkt/", "h", []).key is None  # DuckDB lists on /bucket/
    assert target(b"/bkt", "h", []).key is None
    assert target(b"/", "h", []).bucket is None


def test_virtual_host_style():
    t = target(b"/dir/k.csv", "Data.S3.localhost:9000", ["s3.localhost"])
    assert (t.bucket, t.key, t.vhost) == ("data", b"dir/k.csv", True)
    assert target(b"/", "data.s3.localhost", ["s3.localhost"]).key is None
    assert target(b"/x/k", "s3.localhost:9000", ["s3.localhost"]).bucket == "x"  # the bare domain: path style


def test_bucket_names_are_a_space_or_project_dot_space():
    assert bucket_ref("data") == (None, "data")
    assert bucket_ref("acme.data") == ("acme", "data")
    for bad in ("a.b.c", ".x", "x."):
        with pytest.raises(S3Error) as caught:
            bucket_ref(bad)
        assert caught.value.code == "InvalidBucketName"


# -- routing ----------------------------------------------------------------------------------------------
def request(method: str, path: str, query: str = "", headers: dict[str, str] | None = None) -> S3Request:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "headers": [(b"host", b"127.0.0.1")] + [(k.encode(), v.encode()) for k, v in (headers or {}).items()],
    }
    return S3Request.from_scope(scope, ["s3.localhost"], on_s3_port=False)


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "operation"),
    [
        ("GET", "/", "", {}, "ListBuckets"),
        ("PUT", "/b", "", {}, "CreateBucket"),
        ("HEAD", "/b", "", {}, "HeadBucket"),
        ("DELETE", "/b", "", {}, "DeleteBucket"),
        ("GET", "/b", "location", {}, "GetBucketLocation"),
        ("GET", "/b", "versioning", {}, "GetBucketVersioning"),
        ("GET", "/b", "uploads", {}, "ListMultipartUploads"),
        ("GET", "/b/", "encoding-type=url&list-type=2&prefix=d%2F", {}, "ListObjectsV2"),
        ("GET", "/b", "prefix=x&marker=y", {}, "ListObjects"),
        ("POST", "/b/", "delete", {}, "DeleteObjects"),
        ("PUT", "/b/k", "partNumber=1&uploadId=u", {}, "UploadPart"),
        ("PUT", "/b/k", "uploadId=u&partNumber=1", {"x-amz-copy-source": "/b/s"}, "UploadPartCopy"),
        ("PUT", "/b/k", "", {"x-amz-copy-source": "/b/s"}, "CopyObject"),
        ("PUT", "/b/k", "", {}, "PutObject"),
        ("GET", "/b/k", "response-content-type=text/plain", {}, "GetObject"),
        ("GET", "/b/k", "uploadId=u", {}, "ListParts"),
        ("HEAD", "/b/k", "", {}, "HeadObject"),
        ("DELETE", "/b/k", "uploadId=u", {}, "AbortMultipartUpload"),
        ("DELETE", "/b/k", "", {}, "DeleteObject"),
        ("POST", "/b/k", "uploads=", {}, "CreateMultipartUpload"),
        ("POST", "/b/k", "uploadId=u", {}, "CompleteMultipartUpload"),
        ("GET", "/b/k", "versionId=null", {}, "GetObject"),
    ],
)
def test_operations_by_method_level_and_subresource(method, path, query, headers, operation):
    assert route(request(method, path, query, headers)).name == operation


@pytest.mark.parametrize(
    ("method", "path", "query", "expected", "status"),
    [
        ("PUT", "/b/k", "acl", "NotImplemented", 501),
        ("GET", "/b/k", "tagging", "NotImplemented", 501),
        ("PUT", "/b", "policy", "NotImplemented", 501),
        ("GET", "/b", "versions", "NotImplemented", 501),
        ("PUT", "/b", "versioning", "NotImplemented", 501),
        ("GET", "/b/k", "versionId=3HL4kqtJlcpXroDTDmJ", "NotImplemented", 501),
        ("POST", "/b/k", "", "NotImplemented", 501),
        ("PATCH", "/b/k", "", "MethodNotAllowed", 405),
        ("PUT", "/", "", "MethodNotAllowed", 405),
        ("GET", "/b", "list-type=3", "InvalidArgument", 400),
    ],
)
def test_unsupported_subresources_never_run_the_base_operation(method, path, query, expected, status):
    with pytest.raises(S3Error) as caught:
        route(request(method, path, query))
    assert (caught.value.code, caught.value.status) == (expected, status)


# -- what is an S3 request ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("headers", "query", "expected"),
    [
        ([(b"authorization", b"AWS4-HMAC-SHA256 Credential=x")], b"", True),
        ([(b"authorization", b"AWS AKIA:sig")], b"", True),
        ([(b"authorization", b"Bearer tok")], b"", False),
        ([(b"x-storageapi-token", b"tok")], b"", False),
        ([], b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=x", True),
        ([], b"AWSAccessKeyId=A&Signature=s&Expires=1", True),
        ([], b"expires=1&signature=s&signer=3", False),  # the spaces face's own presigned URLs
        ([], b"prefix=X-Amz-Algorithm%3D", False),
        ([], b"q=X-Amz-Algorithm=1", False),
    ],
)
def test_s3_requests_are_told_apart_by_their_signature(headers, query, expected):
    assert is_s3_request({"headers": headers, "query_string": query}) is expected
