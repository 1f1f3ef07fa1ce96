"""The engine: DuckDB over DuckLake, one lake per project. Never imports the web layer.

``Engine`` opens and caches each project's ``Lake``; ``Lake.cursor()`` hands out cursors;
``execute`` runs a statement with a time limit and cancellation; ``stage_csv``/``write_csv``
move CSV in and out in a ``CsvDialect``.
"""

from __future__ import annotations

from entrepot.core.engine.csv import CsvDialect, StagedCsv, stage_csv, write_csv
from entrepot.core.engine.lake import Engine, Lake, validate_project
from entrepot.core.engine.statements import execute, interrupt_on_cancel, quote_ident, quote_literal

__all__ = [
    "CsvDialect",
    "Engine",
    "Lake",
    "StagedCsv",
    "execute",
    "interrupt_on_cancel",
    "quote_ident",
    "quote_literal",
    "stage_csv",
    "validate_project",
    "write_csv",
]
