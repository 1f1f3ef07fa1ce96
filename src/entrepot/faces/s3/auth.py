"""Who sent an S3 request: its signature checked, its credential resolved by one core call.

In order (S3's own order of refusals): the signature's form, the clock, the unsigned ``x-amz-*``
headers, the credential, the signature itself (botocore), the session token. Only then may a
handler read the body. A request without any signature is anonymous, which only the dedicated
S3 listener sees (on the shared port an unsigned request belongs to the other faces).

The credential comes from ``core.s3_credentials``: ``cached`` answers on the event loop when this
process holds the access key in memory (a client's requests after its first), else ``resolve``
reads it from the catalog in one of the face's short-work threads (``s3_threads``).
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass

import anyio.to_thread

from entrepot.core.auth import ANONYMOUS, Principal
from entrepot.core.clock import utcnow
from entrepot.core.s3_credentials import Credential, cached, resolve
from entrepot.core.services import Services
from entrepot.faces.s3.errors import s3_error
from entrepot.faces.s3.sigv4 import (
    ChunkSigner,
    SignedRequest,
    check_time,
    chunk_signer,
    parse_request,
    verify,
)
from entrepot.faces.s3.wire import S3Request, short_work
from entrepot.logs import project_var, token_var

SIGNED_STREAMING = ("STREAMING-AWS4-HMAC-SHA256-PAYLOAD", "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER")


@dataclass(frozen=True)
class S3Caller:
    """The authenticated caller of one request."""

    principal: Principal  # ANONYMOUS on the S3 listener without a signature
    credential: Credential | None
    signed: SignedRequest | None
    signer: ChunkSigner | None  # for the chunk signatures of a signed aws-chunked body
    region: str  # the region the request was signed for (else s3_region)

    @property
    def anonymous(self) -> bool:
        return self.signed is None


async def authenticate(req: S3Request, services: Services) -> S3Caller:
    settings = services.settings
    if req.query_error is not None:
        raise req.query_error
    signed = parse_request(req.headers, req.pairs)
    if signed is None:
        if not req.on_s3_port:  # never routed here; refuse rather than guess
            raise s3_error("AccessDenied", "sign S3 requests with AWS Signature Version 4")
        return S3Caller(ANONYMOUS, None, None, None, settings.s3_region)
    check_time(signed, utcnow(), settings.s3_max_clock_skew, settings.presign_max_ttl)
    if signed.mode == "header" and not signed.payload_hash:
        raise s3_error("InvalidRequest", "x-amz-content-sha256 must not be empty")
    unsigned = sorted(n for n in req.headers if n.startswith("x-amz-") and n not in signed.signed_headers)
    if unsigned:
        raise s3_error(
            "AccessDenied",
            f"There were headers present in the request which were not signed: {', '.join(unsigned)[:300]}",
            HeadersNotSigned=", ".join(unsigned)[:300],
        )
    access_key, security_token = signed.scope.access_key, signed.security_token
    credential = cached(services, access_key, security_token)
    if credential is None:
        credential = await anyio.to_thread.run_sync(
            resolve, services, access_key, security_token, limiter=short_work(settings.s3_threads)
        )
    seed = verify(
        signed, credential.secret_access_key, req.method, req.host, req.raw_path, req.pairs, req.headers
    )
    if credential.session_token is not None and not hmac.compare_digest(
        (signed.security_token or "").encode(), credential.session_token.encode()
    ):
        raise s3_error("InvalidToken", "The provided token is malformed or otherwise invalid.")
    principal = credential.principal
    project_var.set(principal.project_id)
    token_var.set(principal.token_id)
    signer = (
        chunk_signer(signed, credential.secret_access_key, seed)
        if signed.payload_hash in SIGNED_STREAMING
        else None
    )
    return S3Caller(principal, credential, signed, signer, signed.scope.region)
