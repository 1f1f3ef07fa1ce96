"""Fixtures for the engine tests: an Engine over a temporary data dir."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from entrepot.config import Settings
from entrepot.core.engine import Engine


def _settings(data_dir: Path, **overrides: Any) -> Settings:
    return Settings(data_dir=data_dir, engine_threads=2, engine_memory_limit="512MB", **overrides)


@pytest.fixture
def make_settings() -> Callable[..., Settings]:
    """Settings for a given data dir with small engine limits and extra overrides."""
    return _settings


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return _settings(tmp_path / "data")


@pytest.fixture
def engine(settings: Settings) -> Iterator[Engine]:
    eng = Engine(settings)
    yield eng
    eng.close()
