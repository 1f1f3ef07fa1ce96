"""Storage tokens (``/v2/storage/tokens``): verify, list, create, detail, refresh, delete."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from entrepot.client._http import Transport

TokenDict = dict[str, Any]
Permission = Literal["read", "write"]


class Tokens:
    """Tokens of the caller's project, as Keboola token objects."""

    def __init__(self, http: Transport):
        self._http = http

    def verify(self) -> TokenDict:
        """The calling token: id, description, permissions and project (``owner``)."""
        token: TokenDict = self._http.json("GET", "/v2/storage/tokens/verify")
        return token

    def list(self) -> list[TokenDict]:
        """Every token of the project (needs a token that can manage tokens)."""
        tokens: list[TokenDict] = self._http.json("GET", "/v2/storage/tokens")
        return tokens

    def get(self, token_id: int | str) -> TokenDict:
        """One token's details (never its secret)."""
        token: TokenDict = self._http.json("GET", f"/v2/storage/tokens/{token_id}")
        return token

    def create(
        self,
        description: str | None = None,
        *,
        can_manage_buckets: bool = False,
        can_manage_tokens: bool = False,
        can_read_all_file_uploads: bool = False,
        can_manage_spaces: bool = False,
        bucket_permissions: Mapping[str, Permission] | None = None,
        space_permissions: Mapping[str, Permission] | None = None,
        expires_in: int | None = None,
        owner: str | None = None,
    ) -> TokenDict:
        """Create a token; the result's ``token`` field holds the secret, shown this once.

        ``bucket_permissions`` maps bucket ids (``in.c-main``) and ``space_permissions`` space names
        to ``"read"`` or ``"write"``; ``expires_in`` is in seconds (None: never expires).
        ``owner`` names the person the token acts for: every token of one owner sees the same
        exports and export templates.
        """
        body: dict[str, Any] = {
            "canManageBuckets": can_manage_buckets,
            "canManageTokens": can_manage_tokens,
            "canReadAllFileUploads": can_read_all_file_uploads,
            "canManageSpaces": can_manage_spaces,
        }
        if description is not None:
            body["description"] = description
        if bucket_permissions:
            body["bucketPermissions"] = dict(bucket_permissions)
        if space_permissions:
            body["spacePermissions"] = dict(space_permissions)
        if expires_in is not None:
            body["expiresIn"] = expires_in
        if owner is not None:
            body["owner"] = owner
        token: TokenDict = self._http.json("POST", "/v2/storage/tokens", json=body)
        return token

    def refresh(self, token_id: int | str) -> TokenDict:
        """Replace the token's secret; the result's ``token`` field holds the new one."""
        token: TokenDict = self._http.json("POST", f"/v2/storage/tokens/{token_id}/refresh")
        return token

    def delete(self, token_id: int | str) -> None:
        """Revoke a token; its secret stops working at once."""
        self._http.request("DELETE", f"/v2/storage/tokens/{token_id}")
