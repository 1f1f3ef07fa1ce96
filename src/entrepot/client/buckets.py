"""Buckets (``/v2/storage/buckets``): the schemas that hold tables, named ``<stage>.c-<name>``."""

from __future__ import annotations

from typing import Any, Literal

from entrepot.client._http import Transport

BucketDict = dict[str, Any]


class Buckets:
    """Buckets of the caller's project, as Keboola bucket objects."""

    def __init__(self, http: Transport):
        self._http = http

    def list(self) -> list[BucketDict]:
        """Every bucket the token can read."""
        buckets: list[BucketDict] = self._http.json("GET", "/v2/storage/buckets")
        return buckets

    def get(self, bucket_id: str) -> BucketDict:
        """One bucket, with its tables (``NotFound`` when it does not exist)."""
        bucket: BucketDict = self._http.json("GET", f"/v2/storage/buckets/{bucket_id}")
        return bucket

    def create(self, name: str, stage: Literal["in", "out"] = "in", description: str = "") -> BucketDict:
        """Create ``<stage>.c-<name>`` (needs a token that can manage buckets)."""
        data = {"name": name, "stage": stage, "description": description}
        bucket: BucketDict = self._http.json("POST", "/v2/storage/buckets", data=data)
        return bucket

    def delete(self, bucket_id: str, *, force: bool = False) -> None:
        """Delete a bucket; ``force`` also drops its tables (else a bucket with tables is refused)."""
        params = {"force": "1" if force else "0", "async": "0"}
        self._http.request("DELETE", f"/v2/storage/buckets/{bucket_id}", params=params)
