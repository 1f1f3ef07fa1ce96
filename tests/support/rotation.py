"""The same catalog seen by a server whose installation secret was changed (key-rotation tests)."""

from __future__ import annotations

from entrepot.config import Settings
from entrepot.core.services import Services


def rotated(services: Services, secret: str, previous: list[str]) -> Services:
    """``services``' catalog under ``secret_key=secret`` with ``previous`` still accepted."""
    settings = Settings(
        data_dir=services.settings.data_dir,
        catalog_url=services.settings.catalog_url,
        secret_key=secret,
        previous_secret_keys=previous,
    )
    return Services(settings, services.catalog)
