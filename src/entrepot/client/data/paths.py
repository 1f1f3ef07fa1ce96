"""Paths of the spaces API (``/spaces/v1/<project>/<space>/...``), quoted in one place."""

from __future__ import annotations

from urllib.parse import quote


def space_path(project: str, space: str) -> str:
    """``/spaces/v1/<project>/<space>``, each part quoted whole."""
    return f"/spaces/v1/{quote(project, safe='')}/{quote(space, safe='')}"


def object_path(space: str, key: str) -> str:
    """The path of the object ``key`` in the space at path ``space`` (the key's '/' kept)."""
    return f"{space}/objects/{quote(key, safe='/')}"
