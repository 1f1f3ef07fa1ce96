"""ListBuckets: the spaces of the caller's project it may read."""

from __future__ import annotations

from entrepot.core.objects import service
from entrepot.core.services import Services
from entrepot.faces.s3.auth import S3Caller
from entrepot.faces.s3.common import run, xml
from entrepot.faces.s3.errors import s3_error
from entrepot.faces.s3.wire import BodyState, Reply, S3Request
from entrepot.faces.s3.xmlio import element, iso


async def list_buckets(req: S3Request, caller: S3Caller, services: Services, state: BodyState) -> Reply:
    principal = caller.principal
    if principal.anonymous or principal.project_name is None:
        raise s3_error("AccessDenied", "listing buckets needs a signed request")
    spaces = await run(service.list_spaces, services, principal, principal.project_name)
    buckets = "".join(
        "<Bucket>"
        + element("Name", s.space.name)
        + element("CreationDate", iso(s.space.created_at))
        + "</Bucket>"
        for s in spaces
    )
    owner = (
        "<Owner>"
        + element("ID", principal.project_id)
        + element("DisplayName", principal.project_name)
        + "</Owner>"
    )
    return xml(200, "ListAllMyBucketsResult", [owner, "<Buckets>", buckets, "</Buckets>"])
