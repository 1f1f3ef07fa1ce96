"""entrepot: one self-hosted service for tables, objects, SQL and exports."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from entrepot._version import __version__

# the SDK's names, importable from ``entrepot`` (``DataClient`` and its companions mirror
# Duckietown's ``dt_data_api``)
__all__ = [
    "APIError",
    "Client",
    "DataClient",
    "InvalidToken",
    "Storage",
    "TransferAborted",
    "TransferError",
    "TransferHandler",
    "TransferProgress",
    "TransferStatus",
    "__version__",
]
_SDK_NAMES = frozenset(__all__) - {"__version__"}

if TYPE_CHECKING:
    from entrepot.client import (
        APIError,
        Client,
        DataClient,
        InvalidToken,
        Storage,
        TransferAborted,
        TransferError,
        TransferHandler,
        TransferProgress,
        TransferStatus,
    )


def __getattr__(name: str) -> Any:
    # Lazy: ``from entrepot import Client`` works without importing httpx when the server starts.
    if name in _SDK_NAMES:
        import entrepot.client

        return getattr(entrepot.client, name)
    raise AttributeError(f"module 'entrepot' has no attribute {name!r}")
