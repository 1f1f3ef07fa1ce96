"""entrepot: one self-hosted service for tables, objects, SQL and exports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = ["Client", "__version__"]

if TYPE_CHECKING:
    from entrepot.client import Client


def __getattr__(name: str) -> Any:
    # Lazy: ``from entrepot import Client`` works without importing httpx when the server starts.
    if name == "Client":
        from entrepot.client import Client

        return Client
    raise AttributeError(f"module 'entrepot' has no attribute {name!r}")
