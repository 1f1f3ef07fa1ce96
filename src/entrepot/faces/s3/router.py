"""Which S3 operation a request is: by method, level (service, bucket, object) and query subresource.

Subresources entrepot does not implement are answered ``501 NotImplemented`` rather than served
as the base operation (``PUT /b/k?acl`` must never overwrite ``k``); other methods ``405``.
"""

from __future__ import annotations

from dataclasses import dataclass

import entrepot.faces.s3.ops_buckets as ops_buckets
import entrepot.faces.s3.ops_listing as ops_listing
import entrepot.faces.s3.ops_multipart as ops_multipart
import entrepot.faces.s3.ops_objects as ops_objects
import entrepot.faces.s3.ops_service as ops_service
from entrepot.faces.s3.common import Handler
from entrepot.faces.s3.errors import S3Error, s3_error
from entrepot.faces.s3.wire import S3Request

UNSUPPORTED = frozenset(
    {
        "accelerate",
        "acl",
        "analytics",
        "attributes",
        "cors",
        "encryption",
        "intelligent-tiering",
        "inventory",
        "legal-hold",
        "lifecycle",
        "logging",
        "metadataConfiguration",
        "metrics",
        "notification",
        "object-lock",
        "ownershipControls",
        "policy",
        "policyStatus",
        "publicAccessBlock",
        "renameObject",
        "replication",
        "requestPayment",
        "restore",
        "retention",
        "select",
        "session",
        "tagging",
        "torrent",
        "versions",
        "website",
    }
)


@dataclass(frozen=True)
class Operation:
    name: str
    handler: Handler


def _not_implemented(what: str) -> S3Error:
    return S3Error("NotImplemented", f"{what} is not implemented by entrepot's S3 face", 501)


def route(req: S3Request) -> Operation:
    for name, _ in req.pairs:
        if name in UNSUPPORTED:
            raise _not_implemented(f"the ?{name} subresource")
    version = req.query("versionId")
    if version not in (None, "", "null"):
        raise _not_implemented("object versions (versionId)")
    method, target = req.method, req.target
    if target.bucket is None:
        if method in ("GET", "HEAD"):
            return Operation("ListBuckets", ops_service.list_buckets)
        raise _method(method, "the service")
    if target.key is None:
        return _bucket_operation(req)
    return _object_operation(req)


def _method(method: str, what: str) -> S3Error:
    return S3Error(
        "MethodNotAllowed",
        f"The specified method ({method}) is not allowed against {what}.",
        405,
        extra={"Method": method, "ResourceType": what.removeprefix("the ").upper()},
    )


def _bucket_operation(req: S3Request) -> Operation:
    method = req.method
    if method == "GET":
        if req.has("location"):
            return Operation("GetBucketLocation", ops_buckets.get_bucket_location)
        if req.has("versioning"):
            return Operation("GetBucketVersioning", ops_buckets.get_bucket_versioning)
        if req.has("uploads"):
            return Operation("ListMultipartUploads", ops_multipart.list_multipart_uploads)
        list_type = req.query("list-type")
        if list_type == "2":
            return Operation("ListObjectsV2", ops_listing.list_objects_v2)
        if list_type not in (None, "1"):
            raise s3_error("InvalidArgument", "list-type must be 2 (or absent)", ArgumentName="list-type")
        return Operation("ListObjects", ops_listing.list_objects_v1)
    if method == "PUT":
        for name in ("versioning", "location", "uploads"):
            if req.has(name):
                raise _not_implemented(f"PUT ?{name}")
        return Operation("CreateBucket", ops_buckets.create_bucket)
    if method == "HEAD":
        return Operation("HeadBucket", ops_buckets.head_bucket)
    if method == "DELETE":
        return Operation("DeleteBucket", ops_buckets.delete_bucket)
    if method == "POST":
        if req.has("delete"):
            return Operation("DeleteObjects", ops_listing.delete_objects)
        raise _not_implemented("POST uploads of browser forms")
    raise _method(method, "the bucket")


def _object_operation(req: S3Request) -> Operation:
    method = req.method
    if method == "PUT":
        if req.has("partNumber") or req.has("uploadId"):
            if req.header("x-amz-copy-source") is not None:
                return Operation("UploadPartCopy", ops_multipart.upload_part_copy)
            return Operation("UploadPart", ops_multipart.upload_part)
        if req.header("x-amz-copy-source") is not None:
            return Operation("CopyObject", ops_objects.copy_object)
        return Operation("PutObject", ops_objects.put_object)
    if method == "GET":
        if req.has("uploadId"):
            return Operation("ListParts", ops_multipart.list_parts)
        return Operation("GetObject", ops_objects.get_object)
    if method == "HEAD":
        return Operation("HeadObject", ops_objects.head_object)
    if method == "DELETE":
        if req.has("uploadId"):
            return Operation("AbortMultipartUpload", ops_multipart.abort_multipart_upload)
        return Operation("DeleteObject", ops_objects.delete_object)
    if method == "POST":
        if req.has("uploads"):
            return Operation("CreateMultipartUpload", ops_multipart.create_multipart_upload)
        if req.has("uploadId"):
            return Operation("CompleteMultipartUpload", ops_multipart.complete_multipart_upload)
        raise _not_implemented("POST on an object without ?uploads or ?uploadId")
    raise _method(method, "the object")
