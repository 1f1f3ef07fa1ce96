"""SigV4 verification (faces/s3/sigv4.py) against the S3 documentation's published examples, and
against requests botocore signs itself (the client side of the same library)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from entrepot.faces.s3.awschunked import encode
from entrepot.faces.s3.errors import S3Error
from entrepot.faces.s3.sigv4 import (
    canonical_path,
    check_time,
    chunk_signer,
    compute,
    parse_request,
    query_pairs,
    verify,
)

# the S3 API reference's example credentials ("Signature Calculations for the Authorization Header")
AKID = "AKIAIOSFODNN7EXAMPLE"
SECRET = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
HOST = "examplebucket.s3.amazonaws.com"
EMPTY = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
SCOPE = f"{AKID}/20130524/us-east-1/s3/aws4_request"


def header_request(
    signed: str, signature: str, extra: dict[str, str], host: str = HOST
) -> dict[str, list[str]]:
    headers = {"host": [host], "x-amz-date": ["20130524T000000Z"], **{k: [v] for k, v in extra.items()}}
    headers["authorization"] = [
        f"AWS4-HMAC-SHA256 Credential={SCOPE},SignedHeaders={signed},Signature={signature}"
    ]
    return headers


DOCS_EXAMPLES = [
    # (method, raw path, raw query, signed headers, signature, headers): the four header examples
    (
        "GET",
        b"/test.txt",
        b"",
        "host;range;x-amz-content-sha256;x-amz-date",
        "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41",
        {"range": "bytes=0-9", "x-amz-content-sha256": EMPTY},
    ),
    (
        "PUT",
        b"/test%24file.text",
        b"",
        "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class",
        "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd",
        {
            "date": "Fri, 24 May 2013 00:00:00 GMT",
            "x-amz-storage-class": "REDUCED_REDUNDANCY",
            "x-amz-content-sha256": "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
        },
    ),
    (
        "GET",
        b"/",
        b"lifecycle",
        "host;x-amz-content-sha256;x-amz-date",
        "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543",
        {"x-amz-content-sha256": EMPTY},
    ),
    (
        "GET",
        b"/",
        b"max-keys=2&prefix=J",
        "host;x-amz-content-sha256;x-amz-date",
        "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7",
        {"x-amz-content-sha256": EMPTY},
    ),
]


@pytest.mark.parametrize(("method", "path", "query", "signed", "signature", "extra"), DOCS_EXAMPLES)
def test_the_s3_documentation_examples_verify(method, path, query, signed, signature, extra):
    headers = header_request(signed, signature, extra)
    pairs = query_pairs(query)
    req = parse_request(headers, pairs)
    assert req is not None and req.mode == "header" and req.scope.access_key == AKID
    assert verify(req, SECRET, method, HOST, path, pairs, headers) == signature


def test_the_documentation_presigned_url_verifies():
    query = (
        b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3"
        b"%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
        b"&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
    )
    pairs, headers = query_pairs(query), {"host": [HOST]}
    req = parse_request(headers, pairs)
    assert req is not None and req.mode == "query" and req.expires == 86400
    assert req.payload_hash == "UNSIGNED-PAYLOAD"
    verify(req, SECRET, "GET", HOST, b"/test.txt", pairs, headers)


@pytest.mark.parametrize(
    "change",
    ["method", "path", "query", "header", "payload", "secret", "host"],
)
def test_any_change_to_a_signed_part_is_a_signature_mismatch_that_shows_the_string_to_sign(change):
    method, path, query, signed, signature, extra = DOCS_EXAMPLES[1]
    extra = dict(extra)
    secret, host = SECRET, HOST
    if change == "method":
        method = "POST"
    elif change == "path":
        path = b"/test%24file.txt"
    elif change == "query":
        query = b"acl"
    elif change == "header":
        extra["x-amz-storage-class"] = "STANDARD"
    elif change == "payload":
        extra["x-amz-content-sha256"] = EMPTY
    elif change == "secret":
        secret = SECRET[:-1] + "X"
    elif change == "host":
        host = "other.s3.amazonaws.com"
    headers = header_request(signed, signature, extra, host)
    pairs = query_pairs(query)
    req = parse_request(headers, pairs)
    assert req is not None
    with pytest.raises(S3Error) as caught:
        verify(req, secret, method, host, path, pairs, headers)
    err = caught.value
    assert (err.code, err.status) == ("SignatureDoesNotMatch", 403)
    assert err.extra["StringToSign"].startswith("AWS4-HMAC-SHA256\n20130524T000000Z\n20130524/us-east-1/s3/")
    assert err.extra["CanonicalRequest"].startswith(method + "\n")
    assert SECRET not in str(err.extra) and secret not in str(err.extra)


def test_a_signed_header_the_request_lacks_is_a_mismatch():
    method, path, _, signed, signature, extra = DOCS_EXAMPLES[1]
    extra = {k: v for k, v in extra.items() if k != "date"}
    headers = header_request(signed, signature, extra)
    req = parse_request(headers, [])
    assert req is not None
    with pytest.raises(S3Error, match="date") as caught:
        verify(req, SECRET, method, HOST, path, [], headers)
    assert caught.value.code == "SignatureDoesNotMatch"


def test_host_must_be_signed():
    headers = header_request("x-amz-content-sha256;x-amz-date", "0" * 64, {"x-amz-content-sha256": EMPTY})
    req = parse_request(headers, [])
    assert req is not None
    with pytest.raises(S3Error) as caught:
        verify(req, SECRET, "GET", HOST, b"/x", [], headers)
    assert caught.value.code == "AccessDenied"


def test_the_signed_chunk_example_of_the_documentation():
    """S3 docs' "Example: PUT Object" in chunks: the seed (botocore) and each chunk's signature (ours)."""
    headers = {
        "host": ["s3.amazonaws.com"],
        "x-amz-date": ["20130524T000000Z"],
        "x-amz-storage-class": ["REDUCED_REDUNDANCY"],
        "x-amz-content-sha256": ["STREAMING-AWS4-HMAC-SHA256-PAYLOAD"],
        "content-encoding": ["aws-chunked"],
        "x-amz-decoded-content-length": ["66560"],
        "content-length": ["66824"],
        "authorization": [
            f"AWS4-HMAC-SHA256 Credential={SCOPE},SignedHeaders=content-encoding;content-length;host;"
            "x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,"
            "Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
        ],
    }
    req = parse_request(headers, [])
    assert req is not None
    seed = verify(req, SECRET, "PUT", "s3.amazonaws.com", b"/examplebucket/chunkObject.txt", [], headers)
    assert seed == "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"
    body = encode(b"a" * 66560, 65536, chunk_signer(req, SECRET, seed))
    assert len(body) == 66824
    signatures = [line.split(b"=")[1].decode() for line in body.split(b"\r\n") if b"chunk-signature" in line]
    assert signatures == [
        "ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
        "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
        "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
    ]


WEIRD_KEY = "dir/a b+c=d%41~é€!*'()[]{}^@$&,;:#|`\"<>.txt"


def _botocore_signed(method: str, url: str, headers: dict[str, str], *, query_auth: bool = False):
    creds = Credentials("EKTEST", "s3cr3t/with+chars", "session-token" if query_auth else None)
    request = AWSRequest(method=method, url=url, headers=headers)
    signer = (
        S3SigV4QueryAuth(creds, "s3", "eu-west-3", expires=600)
        if query_auth
        else S3SigV4Auth(creds, "s3", "eu-west-3")
    )
    signer.add_auth(request)
    return request.prepare()


def _received(prepared):
    """What the server sees of a request botocore prepared: raw path, raw query, headers."""
    raw = prepared.url.split("://", 1)[1]
    hostport, _, rest = raw.partition("/")
    path, _, query = ("/" + rest).partition("?")
    headers: dict[str, list[str]] = {"host": [hostport]}
    for name, value in prepared.headers.items():
        headers.setdefault(name.lower(), []).append(value.decode() if isinstance(value, bytes) else value)
    return hostport, path.encode(), query.encode(), headers


@pytest.mark.parametrize("query_auth", [False, True])
def test_requests_botocore_signs_verify_with_any_key_characters_and_query(query_auth):
    from urllib.parse import quote

    url = f"http://127.0.0.1:9000/bkt/{quote(WEIRD_KEY, safe='/~')}?list-type=2&prefix=a%2Fb&uploads"
    headers = {"x-amz-content-sha256": EMPTY, "x-amz-meta-who": "me  and   you", "range": "bytes=1-2"}
    prepared = _botocore_signed("GET", url, headers, query_auth=query_auth)
    host, path, query, received = _received(prepared)
    pairs = query_pairs(query)
    req = parse_request(received, pairs)
    assert req is not None and req.mode == ("query" if query_auth else "header")
    assert req.scope.region == "eu-west-3"
    verify(req, "s3cr3t/with+chars", "GET", host, path, pairs, received)
    with pytest.raises(S3Error):
        verify(req, "s3cr3t/with+chars", "GET", host, path.replace(b"bkt", b"bkx"), pairs, received)


def test_canonical_path_decodes_once_and_keeps_double_slashes_and_dots():
    assert canonical_path(b"/b/a%20b/%2Bc") == "/b/a%20b/%2Bc"
    assert canonical_path(b"/b/a+b") == "/b/a%2Bb"
    assert canonical_path(b"/b//x/../y") == "/b//x/../y"
    assert canonical_path(b"/b/%25") == "/b/%25"
    assert canonical_path("/b/é".encode()) == "/b/%C3%A9"


def test_query_pairs_keep_bare_names_and_plus():
    assert query_pairs(b"uploads&prefix=a%2Fb+c&x=") == [("uploads", ""), ("prefix", "a/b+c"), ("x", "")]
    with pytest.raises(S3Error) as caught:
        query_pairs(b"prefix=%ff")
    assert caught.value.code == "InvalidArgument"


@pytest.mark.parametrize(
    ("headers", "query", "code"),
    [
        ({"authorization": ["AWS4-HMAC-SHA256 Credential=x"]}, b"", "AuthorizationHeaderMalformed"),
        (
            {
                "authorization": [
                    f"AWS4-HMAC-SHA256 Credential={AKID}/20130524/us-east-1/ec2/aws4_request,"
                    f"SignedHeaders=host,Signature={'0' * 64}"
                ],
                "x-amz-date": ["20130524T000000Z"],
                "x-amz-content-sha256": [EMPTY],
            },
            b"",
            "AuthorizationHeaderMalformed",
        ),
        (
            {
                "authorization": [
                    f"AWS4-HMAC-SHA256 Credential={SCOPE},SignedHeaders=host,Signature={'0' * 64}"
                ],
                "x-amz-date": ["20130525T000000Z"],
                "x-amz-content-sha256": [EMPTY],
            },
            b"",
            "AuthorizationHeaderMalformed",
        ),
        (
            {
                "authorization": [
                    f"AWS4-HMAC-SHA256 Credential={SCOPE},SignedHeaders=host,Signature={'0' * 64}"
                ],
                "x-amz-date": ["20130524T000000Z"],
            },
            b"",
            "InvalidRequest",
        ),
        ({"authorization": ["AWS AKIA:c2lnbmF0dXJl"]}, b"", "InvalidRequest"),
        ({}, b"AWSAccessKeyId=AKIA&Signature=x&Expires=1", "InvalidRequest"),
        ({"authorization": ["AWS4-ECDSA-P256-SHA256 Credential=x"]}, b"", "NotImplemented"),
        (
            {
                "authorization": [
                    f"AWS4-HMAC-SHA256 Credential={SCOPE},SignedHeaders=host,Signature={'0' * 64}"
                ]
            },
            b"X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "InvalidArgument",
        ),
        (
            {},
            b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
            + SCOPE.replace("/", "%2F").encode()
            + b"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=604801&X-Amz-SignedHeaders=host"
            b"&X-Amz-Signature=" + b"0" * 64,
            "AuthorizationQueryParametersError",
        ),
        (
            {},
            b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Date=20130524T000000Z",
            "AuthorizationQueryParametersError",
        ),
    ],
)
def test_malformed_signatures_get_the_s3_code_for_them(headers, query, code):
    with pytest.raises(S3Error) as caught:
        parse_request(headers, query_pairs(query))
    assert caught.value.code == code
    if code == "InvalidRequest" and "authorization" in str(headers) + str(query):
        assert "s3v4" in caught.value.message or "x-amz-content-sha256" in caught.value.message


def test_sigv2_refusals_name_the_fix():
    with pytest.raises(S3Error, match="signature_version='s3v4'"):
        parse_request({"authorization": ["AWS AKIA:c2ln"]}, [])
    with pytest.raises(S3Error, match="signature_version='s3v4'"):
        parse_request({}, query_pairs(b"AWSAccessKeyId=AKIA&Signature=x&Expires=1"))


def test_unsigned_requests_are_anonymous():
    assert parse_request({"host": ["x"]}, query_pairs(b"prefix=a")) is None


def test_clock_skew_and_presigned_expiry():
    headers = header_request(*DOCS_EXAMPLES[0][3:5], DOCS_EXAMPLES[0][5])
    req = parse_request(headers, [])
    assert req is not None
    signed_at = datetime(2013, 5, 24, tzinfo=UTC)
    check_time(req, signed_at + timedelta(seconds=900), 900)
    check_time(req, signed_at - timedelta(seconds=900), 900)
    with pytest.raises(S3Error) as caught:
        check_time(req, signed_at + timedelta(seconds=901), 900)
    err = caught.value
    assert (err.code, err.status) == ("RequestTimeTooSkewed", 403)
    assert (
        err.extra["RequestTime"] == "20130524T000000Z" and err.extra["MaxAllowedSkewMilliseconds"] == "900000"
    )
    with pytest.raises(S3Error, match=r"too large"):
        check_time(req, signed_at - timedelta(seconds=901), 900)
    presigned = parse_request(
        {"host": [HOST]},
        query_pairs(
            b"X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential="
            + SCOPE.replace("/", "%2F").encode()
            + b"&X-Amz-Date=20130524T000000Z&X-Amz-Expires=60&X-Amz-SignedHeaders=host&X-Amz-Signature="
            + b"0" * 64
        ),
    )
    assert presigned is not None
    check_time(presigned, signed_at + timedelta(seconds=60), 900)
    with pytest.raises(S3Error, match="expired") as caught:
        check_time(presigned, signed_at + timedelta(seconds=61), 900)
    assert caught.value.code == "AccessDenied"
    with pytest.raises(S3Error, match="not valid yet"):
        check_time(presigned, signed_at - timedelta(seconds=901), 900)
    with pytest.raises(S3Error, match="expired"):  # capped by presign_max_ttl
        check_time(presigned, signed_at + timedelta(seconds=31), 900, max_presign=30)


def test_compute_exposes_the_canonical_request():
    method, path, _, signed, signature, extra = DOCS_EXAMPLES[0]
    headers = header_request(signed, signature, extra)
    req = parse_request(headers, [])
    assert req is not None
    computed = compute(req, SECRET, method, HOST, path, [], headers)
    assert computed.canonical_request == "\n".join(
        [
            "GET",
            "/test.txt",
            "",
            f"host:{HOST}",
            "range:bytes=0-9",
            f"x-amz-content-sha256:{EMPTY}",
            "x-amz-date:20130524T000000Z",
            "",
            "host;range;x-amz-content-sha256;x-amz-date",
            EMPTY,
        ]
    )
