"""The shape of the code: no import cycles, a core without the web layer, thin faces, config as a leaf.

The imports are read from the source with ``ast``, not by importing anything, so an import
inside a function or under ``if TYPE_CHECKING:`` counts as much as one at the top of a module.
``from package import name`` depends on the package (its ``__init__`` provides the name) and,
when ``name`` is a submodule, on that submodule too. Modules named by strings
(``importlib.import_module``, plugins) are not edges.
"""

from __future__ import annotations

import ast
from collections import deque
from functools import cache
from itertools import pairwise
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"

WEB_PACKAGES = ("fastapi", "starlette", "uvicorn")
# what the core may never reach: the layers built on top of it
ABOVE_CORE = ("entrepot.faces", "entrepot.cli", "entrepot.app", "entrepot.server", "entrepot.client")
# the only entrepot modules ``entrepot.config`` may import; each is a leaf (imports nothing from entrepot)
CONFIG_MAY_IMPORT = frozenset({"entrepot.syntax"})
LEAVES = frozenset({"entrepot.syntax", "entrepot._version"})

# what a face never touches: it gets views and commands from the core, not its machinery
FACES_NEVER_IMPORT = ("sqlalchemy", "duckdb", "entrepot.core.catalog")

Edge = tuple[str, int]  # (imported module, line)


@cache
def modules() -> dict[str, Path]:
    """Every module of ``src/entrepot`` by dotted name (a package by its own name)."""
    found: dict[str, Path] = {}
    for path in sorted((SRC / "entrepot").rglob("*.py")):
        parts = path.relative_to(SRC).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


@cache
def imports(module: str) -> tuple[Edge, ...]:
    """Every module ``module`` imports (entrepot's and others'), wherever the import statement is."""
    path = modules()[module]
    is_package = path.name == "__init__.py"
    found: list[Edge] = []
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            found.extend((alias.name, node.lineno) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                package = module.split(".") if is_package else module.split(".")[:-1]
                package = package[: len(package) - (node.level - 1)]
                base = ".".join([*package, base] if base else package)
            found.append((base, node.lineno))
            found.extend(
                (f"{base}.{alias.name}", node.lineno)
                for alias in node.names
                if f"{base}.{alias.name}" in modules()
            )
    return tuple(found)


@cache
def graph() -> dict[str, dict[str, int]]:
    """Module → the entrepot modules it imports (with the line of one such import)."""
    known = modules()
    out: dict[str, dict[str, int]] = {}
    for module in known:
        edges: dict[str, int] = {}
        for target, line in imports(module):
            if target in known and target != module:
                edges.setdefault(target, line)
        out[module] = edges
    return out


def strongly_connected(edges: dict[str, dict[str, int]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                components.append(sorted(component))

    for v in sorted(edges):
        if v not in index:
            visit(v)
    return components


def shortest_cycle(edges: dict[str, dict[str, int]], component: list[str]) -> list[str]:
    """One shortest cycle through the component's first module, as a closed path."""
    start, members = component[0], set(component)
    came_from: dict[str, str] = {}
    queue = deque([start])
    while queue:
        v = queue.popleft()
        for w in edges[v]:
            if w not in members:
                continue
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(came_from[path[-1]])
                return [*reversed(path), start]
            if w not in came_from:
                came_from[w] = v
                queue.append(w)
    raise AssertionError(f"no cycle through {start}")  # pragma: no cover


def core_modules() -> list[str]:
    return [m for m in modules() if m == "entrepot.core" or m.startswith("entrepot.core.")]


def face_modules() -> list[str]:
    return [m for m in modules() if m.startswith("entrepot.faces.")]


def tree(module: str) -> ast.Module:
    path = modules()[module]
    return ast.parse(path.read_text(), filename=str(path))


def describe(module: str, line: int) -> str:
    return f"{modules()[module].relative_to(SRC.parent)}:{line}"


def test_no_import_cycles_counting_type_checking_and_function_level_imports():
    edges = graph()
    report = []
    for component in strongly_connected(edges):
        cycle = shortest_cycle(edges, component)
        steps = "\n".join(f"    {a} -> {b}  ({describe(a, edges[a][b])})" for a, b in pairwise(cycle))
        report.append(f"  {len(component)} modules: {', '.join(component)}\n  for example:\n{steps}")
    assert not report, "import cycles (break them; see docs/architecture.md):\n" + "\n".join(report)


def test_the_cycle_finder_finds_a_cycle():
    edges = {"a": {"b": 1}, "b": {"c": 2}, "c": {"a": 3, "d": 4}, "d": {}}
    assert strongly_connected(edges) == [["a", "b", "c"]]
    assert shortest_cycle(edges, ["a", "b", "c"]) == ["a", "b", "c", "a"]


def test_core_never_imports_the_web_framework():
    found = [
        f"{describe(module, line)} imports {target}"
        for module in core_modules()
        for target, line in imports(module)
        if target.split(".")[0] in WEB_PACKAGES
    ]
    assert found == []


def test_core_never_imports_the_layers_above_it():
    found = [
        f"{describe(module, line)} imports {target}"
        for module in core_modules()
        for target, line in imports(module)
        if any(target == above or target.startswith(f"{above}.") for above in ABOVE_CORE)
    ]
    assert found == []


def test_config_imports_only_leaf_modules_of_entrepot():
    found = [
        f"{describe('entrepot.config', line)} imports {target}"
        for target, line in imports("entrepot.config")
        if (target == "entrepot" or target.startswith("entrepot.")) and target not in CONFIG_MAY_IMPORT
    ]
    assert found == [], f"entrepot.config may import only {sorted(CONFIG_MAY_IMPORT)} from entrepot"


def test_leaf_modules_import_nothing_from_entrepot():
    assert CONFIG_MAY_IMPORT <= LEAVES
    found = [
        f"{describe(module, line)} imports {target}"
        for module in sorted(LEAVES)
        for target, line in imports(module)
        if target == "entrepot" or target.startswith("entrepot.")
    ]
    assert found == []


def test_faces_never_import_the_catalog_the_engine_or_private_names_of_the_core():
    found = [
        f"{describe(module, line)} imports {target}"
        for module in face_modules()
        for target, line in imports(module)
        if any(target == banned or target.startswith(f"{banned}.") for banned in FACES_NEVER_IMPORT)
    ]
    for module in face_modules():
        for node in ast.walk(tree(module)):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("entrepot.core"):
                found.extend(
                    f"{describe(module, node.lineno)} imports the private {node.module}.{alias.name}"
                    for alias in node.names
                    if alias.name.startswith("_")
                )
    assert found == []


def test_faces_never_open_catalog_sessions():
    found = [
        f"{describe(module, node.lineno)} opens a catalog session"
        for module in face_modules()
        for node in ast.walk(tree(module))
        if isinstance(node, ast.Attribute)
        and node.attr == "session"
        and isinstance(node.value, ast.Attribute)
        and node.value.attr == "catalog"
    ]
    assert found == []


def test_core_names_no_http_status():
    """Errors carry a kind; each face maps kinds to its API's statuses (``faces/errors.py``)."""
    found = []
    for module in core_modules():
        for node in ast.walk(tree(module)):
            if isinstance(node, ast.ClassDef):
                found.extend(
                    f"{describe(module, item.lineno)}: class {node.name} sets an HTTP status"
                    for item in node.body
                    if isinstance(item, ast.Assign | ast.AnnAssign)
                    and isinstance(item.value, ast.Constant)
                    and isinstance(item.value.value, int)
                    and any(
                        isinstance(t, ast.Name) and t.id in ("status", "status_code")
                        for t in (item.targets if isinstance(item, ast.Assign) else [item.target])
                    )
                )
            elif isinstance(node, ast.keyword) and node.arg == "status_code":
                found.append(f"{describe(module, node.value.lineno)}: passes status_code=")
    assert found == []


FACE_PACKAGE_EXPORTS = ("FACE", "router", "PREFIXES", "TAG", "render_error")


def test_every_face_package_exports_the_same_names_and_is_mounted():
    import importlib

    from entrepot.app import FACES

    packages = sorted(m for m in face_modules() if modules()[m].name == "__init__.py" and m.count(".") == 2)
    assert packages, "no face packages found"
    for name in packages:
        package = importlib.import_module(name)
        missing = [n for n in FACE_PACKAGE_EXPORTS if n not in getattr(package, "__all__", ())]
        assert missing == [], f"{name}.__all__ lacks {missing}"
        face = package.FACE
        assert face in FACES, f"{name}.FACE is not mounted by entrepot.app.FACES"
        assert (face.tag, face.prefixes, face.render_error) == (
            package.TAG,
            package.PREFIXES,
            package.render_error,
        )
