"""Extract the Python examples of the Keboola seed documents, in document order."""

from __future__ import annotations

from pathlib import Path

SEEDS = Path(__file__).resolve().parent / "seeds"


def python_blocks(name: str) -> list[str]:
    """Every ```python block of a seed. A ```python line inside a block starts a new block
    (seed 000 nests one by mistake; the text before it is a markdown heading)."""
    blocks: list[str] = []
    current: list[str] | None = None
    for line in (SEEDS / name).read_text().splitlines():
        stripped = line.strip()
        if stripped.startswith("```python"):
            current = []
            continue
        if stripped.startswith("```") and current is not None:
            blocks.append("\n".join(current) + "\n")
            current = None
            continue
        if current is not None:
            current.append(line)
    return blocks
