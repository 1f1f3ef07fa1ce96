"""``.carto`` files: a zip holding a visualization's definition (``<name>.carto.json``) and each
of its datasets' rows (``<dataset>.parquet``), as ``core/viz_exports.py`` writes them.

An import unpacks a ``.carto`` file like any zip (bounded, ``archive.py``); :func:`take_definition`
then takes the definition out of the files to import, so the Parquet files become the tables
and the job recreates the map over them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

EXTENSION = ".carto"
DEFINITION_SUFFIX = ".carto.json"
FORMAT = "entrepot.carto/1"
MAX_DEFINITION_BYTES = 1024 * 1024


@dataclass(frozen=True)
class CartoDefinition:
    """What a ``.carto`` file says about its visualization (None name: a dataset's export)."""

    name: str | None
    privacy: str = "private"
    attributes: dict[str, Any] = field(default_factory=dict)
    datasets: tuple[str, ...] = ()  # the data files' names, in layer order


def definition_json(definition: CartoDefinition) -> bytes:
    return json.dumps(
        {
            "format": FORMAT,
            "visualization": (
                None
                if definition.name is None
                else {
                    "name": definition.name,
                    "privacy": definition.privacy,
                    "attributes": definition.attributes,
                }
            ),
            "datasets": [{"file": f} for f in definition.datasets],
        },
        indent=2,
    ).encode()


def _read(path: Path) -> CartoDefinition | None:
    if path.stat().st_size > MAX_DEFINITION_BYTES:
        return None
    try:
        doc = json.loads(path.read_bytes())
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        return None
    vis = doc.get("visualization")
    files = [str(d.get("file")) for d in doc.get("datasets") or [] if isinstance(d, dict)]
    if not isinstance(vis, dict):
        return CartoDefinition(None, datasets=tuple(files))
    attributes = vis.get("attributes")
    return CartoDefinition(
        name=str(vis.get("name") or "") or None,
        privacy=str(vis.get("privacy") or "private"),
        attributes=attributes if isinstance(attributes, dict) else {},
        datasets=tuple(files),
    )


def take_definition(files: list[Path]) -> tuple[CartoDefinition | None, list[Path]]:
    """The definition among unpacked ``files`` (a ``.carto`` file's), and the files left to import
    (in the definition's dataset order)."""
    for path in files:
        if path.name.lower().endswith(DEFINITION_SUFFIX):
            definition = _read(path)
            if definition is not None:
                rest = [f for f in files if f != path]
                order = {name: i for i, name in enumerate(definition.datasets)}
                rest.sort(key=lambda f: order.get(f.name, len(order)))
                return definition, rest
    return None, files
