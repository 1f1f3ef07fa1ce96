"""Fixtures of the core's tests: the services of a fresh data directory, and a project's master."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from entrepot.config import Settings
from entrepot.core import auth
from entrepot.core.projects import create_project
from entrepot.core.services import Services


@pytest.fixture
def settings(tmp_path, catalog_url) -> Settings:  # type: ignore[no-untyped-def]
    """A module overrides this fixture to change a knob; ``services`` opens whatever it returns."""
    return Settings(data_dir=tmp_path, catalog_url=catalog_url)


@pytest.fixture
def services(settings: Settings) -> Iterator[Services]:
    svc = Services.open(settings)
    yield svc
    svc.close()


@pytest.fixture
def master(services: Services) -> auth.Principal:
    """The master token's principal of a new project ``acme``."""
    created = create_project(services.catalog, "acme")
    return auth.authenticate(services.catalog, created.master.token)
