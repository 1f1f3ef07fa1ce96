"""What running SQL gives back: the last statement's columns and rows (streamed), or a file.

These are the views the faces render in their API's formats. Rows arrive in batches from an
open cursor, so a result of any size is never held whole in memory; iterate ``Rows.batches``
at most once, inside the ``with`` of the command that made it.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from entrepot.core.sql.geometry import srid_for

Row = tuple[Any, ...]


@dataclass(frozen=True)
class Column:
    """A result column: its name and DuckDB type (``INTEGER``, ``VARCHAR``, ``GEOMETRY``, …)."""

    name: str
    type: str

    @property
    def is_geometry(self) -> bool:
        return self.type.upper().startswith("GEOMETRY")

    @property
    def srid(self) -> int:
        """The SRID of a geometry column: its type's CRS, else by name (``the_geom_webmercator`` → 3857)."""
        return srid_for(self.name, self.type)


@dataclass(frozen=True)
class Page:
    """Page ``number`` (from 0) of ``size`` rows (at least 1) of a query's result."""

    number: int
    size: int


@dataclass(frozen=True)
class Rows:
    """The last statement's result: its columns and its rows, streamed in batches.

    Columns internal to the tables API (a Keboola table's ``_timestamp``) are left out of both.
    ``affected`` is the number of rows a write changed (its result then has no columns);
    ``geojson`` is the index of the column that holds ``the_geom`` as GeoJSON text, when it was
    asked for. A bounded result raises ``PayloadTooLarge`` at the first row over its bound,
    from inside the batch that holds it.
    """

    columns: tuple[Column, ...]
    batches: Iterator[Iterable[Row]]
    affected: int | None = None
    started: float = field(default_factory=time.perf_counter)
    geojson: int | None = None

    @property
    def elapsed(self) -> float:
        """Seconds since the script started (measured when asked: streaming counts)."""
        return time.perf_counter() - self.started


@dataclass(frozen=True)
class ResultFile:
    """The last statement's result written by DuckDB into a file (parquet, xlsx), deleted afterwards."""

    path: Path


@dataclass(frozen=True)
class Loaded:
    """A COPY FROM: the rows it inserted and how long it took, in seconds."""

    rows: int
    elapsed: float
