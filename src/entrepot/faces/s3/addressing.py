"""Which bucket and key a request addresses: path style (``/<bucket>/<key>``) or virtual-host
style (``<bucket>.<domain>/<key>``), and which project and space a bucket name means."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote_to_bytes

from entrepot.faces.s3.errors import s3_error


@dataclass(frozen=True)
class Target:
    bucket: str | None  # None: the service (ListBuckets)
    key: bytes | None  # percent-decoded once, still bytes (the core decodes UTF-8 strictly); None: the bucket
    vhost: bool


def host_name(host: str) -> str:
    """``Host`` without its port, lowercased (``[::1]:9000`` → ``[::1]``)."""
    host = host.strip().lower()
    if host.startswith("["):
        return host.split("]", 1)[0] + "]"
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def target(raw_path: bytes, host: str, vhost_domains: Sequence[str]) -> Target:
    """The bucket and key of a request; the key is everything after ``/<bucket>/`` (``//`` kept,
    ``+`` never a space); ``/<bucket>/`` with nothing after it is the bucket itself."""
    name = host_name(host)
    for domain in vhost_domains:
        domain = domain.strip().lower().strip(".")
        if domain and name.endswith("." + domain) and len(name) > len(domain) + 1:
            bucket = name[: -len(domain) - 1]
            rest = raw_path[1:] if raw_path.startswith(b"/") else raw_path
            return Target(bucket, unquote_to_bytes(rest) if rest else None, True)
    path = raw_path[1:] if raw_path.startswith(b"/") else raw_path
    if not path:
        return Target(None, None, False)
    bucket_raw, slash, rest = path.partition(b"/")
    bucket = unquote_to_bytes(bucket_raw).decode("utf-8", "replace")
    return Target(bucket, unquote_to_bytes(rest) if slash and rest else None, False)


def bucket_ref(bucket: str) -> tuple[str | None, str]:
    """``space`` → (None, space): a space of the caller's project; ``project.space`` → (project, space)."""
    parts = bucket.split(".")
    if len(parts) == 1:
        return None, bucket
    if len(parts) == 2 and all(parts):
        return parts[0], parts[1]
    raise s3_error(
        "InvalidBucketName",
        f"invalid bucket name {bucket[:80]!r}: a bucket is a space ('<space>') or '<project>.<space>'",
        BucketName=bucket[:255],
    )
