"""Buckets (spaces): CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation, GetBucketVersioning."""

from __future__ import annotations

from entrepot.core.objects import service
from entrepot.core.services import Services
from entrepot.faces.s3.auth import S3Caller
from entrepot.faces.s3.common import bucket_of, check_write_headers, read_small_body, run, xml
from entrepot.faces.s3.errors import s3_error
from entrepot.faces.s3.wire import BodyState, Reply, S3Request
from entrepot.faces.s3.xmlio import HEADER, NAMESPACE, parse_create_bucket, text

MAX_CONFIGURATION = 64 * 1024


async def create_bucket(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    principal = caller.principal
    if principal.anonymous:
        raise s3_error("AccessDenied", "creating a bucket needs a signed request")
    project, space = bucket_of(req, caller, services)
    if project != principal.project_name and project != str(principal.project_id):
        raise s3_error("AccessDenied", "buckets can only be created in the project of your key")
    check_write_headers(req)
    parse_create_bucket(await read_small_body(req, caller, state, MAX_CONFIGURATION))  # any location is fine
    await run(service.create_space, services, principal, project, service.NewSpace(name=space))
    return Reply(200, [("Location", f"/{req.target.bucket}")])


async def head_bucket(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    project, space = bucket_of(req, caller, services)
    await run(service.open_space, services, caller.principal, project, space, "read")
    return Reply(200, [("x-amz-bucket-region", caller.region), ("Content-Type", "application/xml")])


async def delete_bucket(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    project, space = bucket_of(req, caller, services)
    await run(service.delete_space, services, caller.principal, project, space, force=False)
    return Reply(204)


async def get_bucket_location(
    req: S3Request, caller: S3Caller, services: Services, state: BodyState
) -> Reply:
    project, space = bucket_of(req, caller, services)
    await run(service.open_space, services, caller.principal, project, space, "read")
    region = services.settings.s3_region
    value = "" if region == "us-east-1" else text(region)
    body = f'{HEADER}<LocationConstraint xmlns="{NAMESPACE}">{value}</LocationConstraint>'
    return Reply(200, [("Content-Type", "application/xml")], body.encode("utf-8"))


async def get_bucket_versioning(
    req: S3Request, caller: S3Caller, services: Services, state: BodyState
) -> Reply:
    project, space = bucket_of(req, caller, services)
    await run(service.open_space, services, caller.principal, project, space, "read")
    return xml(200, "VersioningConfiguration", [])
