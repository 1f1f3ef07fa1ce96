"""AWS Signature Version 4 for S3, verified with botocore's own signer.

Parsing the ``Authorization`` header or the ``X-Amz-*`` query parameters is ours; the canonical
request, the string to sign and the signature come from ``botocore.auth.S3SigV4Auth`` /
``S3SigV4QueryAuth``, called directly on an ``AWSRequest`` rebuilt from what was received:
the method, the canonical path (decoded once, re-encoded), the decoded query pairs (botocore
encodes and sorts them), and exactly the headers the client signed, with their received values.
``add_auth()`` is never called (it stamps the current time and adds headers).

The only SigV4 arithmetic of our own is the signing key and the chunk and trailer signatures
of aws-chunked bodies, which botocore does not produce; the S3 documentation's example vector
covers them (tests/s3/test_sigv4.py).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from urllib.parse import quote, unquote_to_bytes

from botocore.auth import S3SigV4Auth, S3SigV4QueryAuth
from botocore.awsrequest import AWSRequest
from botocore.compat import HTTPHeaders
from botocore.credentials import Credentials

from entrepot.faces.s3.errors import S3Error, s3_error

ALGORITHM = "AWS4-HMAC-SHA256"
MAX_PRESIGN_EXPIRES = 7 * 24 * 3600
EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()
_AUTH_RE = re.compile(
    r"^AWS4-HMAC-SHA256\s+Credential=(?P<cred>[^,\s]+)\s*,\s*"
    r"SignedHeaders=(?P<signed>[^,\s]+)\s*,\s*Signature=(?P<sig>[0-9a-f]{64})\s*$"
)
_DATE_RE = re.compile(r"^\d{8}T\d{6}Z$")
_SIGNATURE_RE = re.compile(r"^[0-9a-f]{64}$")

Headers = dict[str, list[str]]  # lowercase name → every received value (latin-1 text)
Pairs = list[tuple[str, str]]  # decoded query pairs, in wire order


@dataclass(frozen=True)
class Scope:
    access_key: str
    date: str  # yyyymmdd
    region: str
    service: str

    @property
    def text(self) -> str:
        """The scope as the string to sign has it (without the access key)."""
        return f"{self.date}/{self.region}/{self.service}/aws4_request"


@dataclass(frozen=True)
class SignedRequest:
    """What a SigV4-signed request claims, parsed from its head (no secret involved yet)."""

    mode: Literal["header", "query"]
    scope: Scope
    amz_date: str  # yyyymmddTHHMMSSZ
    signed_headers: tuple[str, ...]
    signature: str
    payload_hash: str  # 64 hex, UNSIGNED-PAYLOAD, STREAMING-...
    security_token: str | None
    expires: int | None  # query mode only

    @property
    def signed_at(self) -> datetime:
        return datetime.strptime(self.amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


class _ExactHeaders:
    """Canonical headers are exactly the headers put on the ``AWSRequest`` (the signed ones).

    botocore's own ``headers_to_sign()`` drops a blacklist (user-agent, expect, transfer-encoding,
    ...) and adds ``host`` from the URL; a verifier must use what the *client* signed instead.
    """

    def headers_to_sign(self, request: Any) -> Any:
        out = HTTPHeaders()
        for name, value in request.headers.items():  # HTTPMessage.items(): every occurrence
            out[name.lower()] = value
        return out


class _HeaderVerifier(_ExactHeaders, S3SigV4Auth):
    pass


class _QueryVerifier(_ExactHeaders, S3SigV4QueryAuth):
    pass


def canonical_path(raw_path: bytes) -> str:
    """Decode once, re-encode every byte outside ``A-Za-z0-9-_.~`` (and ``/``); no dot-segment or
    ``//`` folding (S3's exception to SigV4's normalisation)."""
    return quote(unquote_to_bytes(raw_path), safe="/~")


def query_pairs(raw_query: bytes) -> Pairs:
    """The query as decoded (name, value) pairs in wire order; a bare name has the value ''.

    ``+`` stays a plus (S3 clients encode a space as ``%20``). Invalid UTF-8 → ``InvalidArgument``.
    """
    pairs = []
    for item in raw_query.split(b"&"):
        if not item:
            continue
        name, _, value = item.partition(b"=")
        try:
            pairs.append((unquote_to_bytes(name).decode("utf-8"), unquote_to_bytes(value).decode("utf-8")))
        except UnicodeDecodeError:
            raise s3_error(
                "InvalidArgument", "the query string is not valid UTF-8 after percent-decoding"
            ) from None
    return pairs


def parse_scope(credential: str, code: str) -> Scope:
    parts = credential.split("/")
    if len(parts) != 5 or parts[4] != "aws4_request" or not re.fullmatch(r"\d{8}", parts[1]) or not parts[0]:
        raise s3_error(
            code,
            f"the credential scope {credential[:120]!r} is malformed; expected "
            "<access key id>/<yyyymmdd>/<region>/s3/aws4_request",
        )
    if parts[3] != "s3":
        raise s3_error(code, f"the credential scope names service {parts[3][:40]!r}, not 's3'")
    return Scope(parts[0], parts[1], parts[2], parts[3])


def _first(values: list[str] | None) -> str | None:
    return values[0] if values else None


def parse_request(headers: Headers, pairs: Pairs) -> SignedRequest | None:
    """Classify and parse a request's signature; None when it carries none (anonymous).

    SigV2 and SigV4A are refused with S3 errors that say what to use instead.
    """
    query: dict[str, str] = {}
    for name, value in pairs:
        query.setdefault(name, value)
    auth = _first(headers.get("authorization"))
    by_query = query.get("X-Amz-Algorithm")
    if auth is not None and (by_query is not None or "X-Amz-Signature" in query):
        raise s3_error(
            "InvalidArgument",
            "Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter or the "
            "Authorization header should be specified",
        )
    if auth is not None:
        return _parse_header(auth, headers)
    if by_query is not None:
        return _parse_query(by_query, query, headers)
    if "AWSAccessKeyId" in query and "Signature" in query:
        raise s3_error(
            "InvalidRequest",
            "SigV2 presigned URLs are not supported; presign with Signature Version 4 "
            "(boto3: Config(signature_version='s3v4'))",
        )
    return None


def _parse_header(auth: str, headers: Headers) -> SignedRequest:
    if not auth.startswith(ALGORITHM + " "):
        if auth.startswith("AWS "):
            raise s3_error(
                "InvalidRequest",
                "Signature Version 2 is not supported; sign with AWS4-HMAC-SHA256 "
                "(boto3: Config(signature_version='s3v4'))",
            )
        if auth.startswith("AWS4-ECDSA-P256-SHA256"):
            raise S3Error(
                "NotImplemented", "Signature Version 4A (AWS4-ECDSA-P256-SHA256) is not supported", 501
            )
        raise s3_error("InvalidArgument", "unsupported Authorization scheme; sign with AWS4-HMAC-SHA256")
    m = _AUTH_RE.match(auth)
    if m is None:
        raise s3_error(
            "AuthorizationHeaderMalformed",
            "the Authorization header is malformed; expected 'AWS4-HMAC-SHA256 Credential=..., "
            "SignedHeaders=..., Signature=<64 lowercase hex>'",
        )
    scope = parse_scope(m["cred"], "AuthorizationHeaderMalformed")
    amz_date = _first(headers.get("x-amz-date")) or ""
    if not _DATE_RE.match(amz_date):
        raise s3_error(
            "AccessDenied", "AWS authentication requires a valid x-amz-date header (yyyymmddTHHMMSSZ)"
        )
    if amz_date[:8] != scope.date:
        raise s3_error(
            "AuthorizationHeaderMalformed",
            f"the credential scope's date {scope.date} is not the date of x-amz-date ({amz_date})",
        )
    payload = _first(headers.get("x-amz-content-sha256"))
    if payload is None:
        raise s3_error("InvalidRequest", "Missing required header for this request: x-amz-content-sha256")
    signed = tuple(m["signed"].split(";"))
    return SignedRequest(
        "header",
        scope,
        amz_date,
        signed,
        m["sig"],
        payload,
        _first(headers.get("x-amz-security-token")),
        None,
    )


def _parse_query(algorithm: str, query: dict[str, str], headers: Headers) -> SignedRequest:
    code = "AuthorizationQueryParametersError"
    if algorithm != ALGORITHM:
        if algorithm.startswith("AWS4-ECDSA"):
            raise S3Error("NotImplemented", "Signature Version 4A is not supported", 501)
        raise s3_error(code, "X-Amz-Algorithm only supports 'AWS4-HMAC-SHA256'")
    missing = [
        name
        for name in (
            "X-Amz-Credential",
            "X-Amz-Date",
            "X-Amz-Expires",
            "X-Amz-SignedHeaders",
            "X-Amz-Signature",
        )
        if name not in query
    ]
    if missing:
        raise s3_error(code, f"the presigned URL lacks {', '.join(missing)}")
    scope = parse_scope(query["X-Amz-Credential"], code)
    amz_date = query["X-Amz-Date"]
    if not _DATE_RE.match(amz_date) or amz_date[:8] != scope.date:
        raise s3_error(code, "X-Amz-Date must be yyyymmddTHHMMSSZ on the credential scope's date")
    expires_text = query["X-Amz-Expires"]
    if not expires_text.isdigit() or len(expires_text) > 9:
        raise s3_error(code, "X-Amz-Expires must be a number of seconds")
    expires = int(expires_text)
    if not 1 <= expires <= MAX_PRESIGN_EXPIRES:
        raise s3_error(
            code, f"X-Amz-Expires must be between 1 and {MAX_PRESIGN_EXPIRES} seconds (7 days), not {expires}"
        )
    signature = query["X-Amz-Signature"]
    if not _SIGNATURE_RE.match(signature):
        raise s3_error(code, "X-Amz-Signature must be 64 lowercase hex digits")
    signed = tuple(query["X-Amz-SignedHeaders"].split(";"))
    # a presigned URL may carry x-amz-content-sha256 as a signed header; else the payload is unsigned
    payload = "UNSIGNED-PAYLOAD"
    if "x-amz-content-sha256" in signed:
        payload = _first(headers.get("x-amz-content-sha256")) or payload
    return SignedRequest(
        "query", scope, amz_date, signed, signature, payload, query.get("X-Amz-Security-Token"), expires
    )


def check_time(
    req: SignedRequest, now: datetime, max_skew: int, max_presign: int = MAX_PRESIGN_EXPIRES
) -> None:
    """Refuse a request signed too far from ``now`` (header) or used outside its validity (query)."""
    delta = (now - req.signed_at).total_seconds()
    if req.mode == "header":
        if abs(delta) > max_skew:
            raise s3_error(
                "RequestTimeTooSkewed",
                "The difference between the request time and the current time is too large.",
                RequestTime=req.amz_date,
                ServerTime=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                MaxAllowedSkewMilliseconds=str(max_skew * 1000),
            )
        return
    if delta < -max_skew:
        raise s3_error("AccessDenied", "Request is not valid yet")
    if delta > min(req.expires or 0, max_presign):
        raise s3_error(
            "AccessDenied",
            "Request has expired",
            X_Amz_Expires=str(req.expires),
            ServerTime=now.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        )


@dataclass(frozen=True)
class Computed:
    signature: str
    canonical_request: str
    string_to_sign: str


def compute(
    req: SignedRequest, secret: str, method: str, host: str, raw_path: bytes, pairs: Pairs, headers: Headers
) -> Computed:
    """The signature botocore computes for what was received (and its canonical request)."""
    if "host" not in req.signed_headers:
        raise s3_error("AccessDenied", "the host header must be signed (it is not in SignedHeaders)")
    aws_headers = HTTPHeaders()
    for name in req.signed_headers:
        if name == "host":
            aws_headers["host"] = host
            continue
        values = headers.get(name)
        if values is None:
            raise s3_error(
                "SignatureDoesNotMatch",
                f"the signed header {name[:60]!r} is not in the request; sign only the headers you send",
            )
        for value in values:
            aws_headers[name] = value
    credentials = Credentials(req.scope.access_key, secret, req.security_token)
    verifier: _HeaderVerifier | _QueryVerifier
    if req.mode == "header":
        verifier = _HeaderVerifier(credentials, req.scope.service, req.scope.region)
        params = list(pairs)
    else:
        verifier = _QueryVerifier(credentials, req.scope.service, req.scope.region)
        params = [(n, v) for n, v in pairs if n != "X-Amz-Signature"]
    request = AWSRequest(method=method, url=f"https://{host}{canonical_path(raw_path)}", headers=aws_headers)
    request.params = params or {}  # a list of pairs: botocore encodes and sorts them itself
    request.context["timestamp"] = req.amz_date
    canonical = verifier.canonical_request(request)
    string_to_sign = verifier.string_to_sign(request, canonical)
    return Computed(verifier.signature(string_to_sign, request), canonical, string_to_sign)


def verify(
    req: SignedRequest, secret: str, method: str, host: str, raw_path: bytes, pairs: Pairs, headers: Headers
) -> str:
    """Raise ``SignatureDoesNotMatch`` unless the signature holds; returns it (the seed of a chunked body)."""
    computed = compute(req, secret, method, host, raw_path, pairs, headers)
    if hmac.compare_digest(computed.signature, req.signature):
        return computed.signature
    raise s3_error(
        "SignatureDoesNotMatch",
        "The request signature we calculated does not match the signature you provided. "
        "Check your key and signing method.",
        AWSAccessKeyId=req.scope.access_key,
        StringToSign=computed.string_to_sign,
        SignatureProvided=req.signature,
        CanonicalRequest=computed.canonical_request,
    )


# -- aws-chunked signatures (botocore has no API for them) ------------------------------------------
def signing_key(secret: str, scope: Scope) -> bytes:
    key = hmac.new(("AWS4" + secret).encode("utf-8"), scope.date.encode(), hashlib.sha256).digest()
    for part in (scope.region, scope.service, "aws4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return key


@dataclass(frozen=True)
class ChunkSigner:
    """What the chunk and trailer signatures of a signed aws-chunked body are checked with."""

    key: bytes  # the request's signing key
    amz_date: str
    scope: str  # yyyymmdd/region/s3/aws4_request
    seed: str  # the request's own (verified) signature

    def chunk(self, previous: str, data_sha256_hex: str) -> str:
        sts = "\n".join(
            ["AWS4-HMAC-SHA256-PAYLOAD", self.amz_date, self.scope, previous, EMPTY_SHA256, data_sha256_hex]
        )
        return hmac.new(self.key, sts.encode(), hashlib.sha256).hexdigest()

    def trailer(self, previous: str, lines: bytes) -> str:
        sts = "\n".join(
            [
                "AWS4-HMAC-SHA256-TRAILER",
                self.amz_date,
                self.scope,
                previous,
                hashlib.sha256(lines).hexdigest(),
            ]
        )
        return hmac.new(self.key, sts.encode(), hashlib.sha256).hexdigest()


def chunk_signer(req: SignedRequest, secret: str, seed: str) -> ChunkSigner:
    return ChunkSigner(signing_key(secret, req.scope), req.amz_date, req.scope.text, seed)
