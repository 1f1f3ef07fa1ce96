"""S3 access keys (``/s3/v1/keys``): create, list and revoke the S3 keys of a token."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from entrepot.client._http import Transport

KeyDict = dict[str, Any]


class S3Keys:
    """S3 access keys: an access key id and secret that sign S3 requests with a token's permissions."""

    def __init__(self, http: Transport):
        self._http = http

    def create(
        self, description: str = "", *, expires_in: int | None = None, token_id: int | None = None
    ) -> KeyDict:
        """A new key; ``secretAccessKey`` in the result is shown this once.

        ``expires_in`` (seconds) ends the key early (it never outlives its token); ``token_id``
        gives the key to another token of the project (needs a token that can manage tokens).
        """
        body: dict[str, Any] = {"description": description}
        if expires_in is not None:
            body["expiresIn"] = expires_in
        if token_id is not None:
            body["tokenId"] = token_id
        key: KeyDict = self._http.json("POST", "/s3/v1/keys", json=body)
        return key

    def list(self) -> list[KeyDict]:
        """The token's keys (every key of the project for a token manager), without secrets."""
        keys: list[KeyDict] = self._http.json("GET", "/s3/v1/keys")["keys"]
        return keys

    def revoke(self, access_key_id: str) -> None:
        """Revoke a key; it stops working at once."""
        self._http.request("DELETE", f"/s3/v1/keys/{quote(access_key_id, safe='')}")
