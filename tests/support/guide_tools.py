"""Helpers the docs tests run as programs (see support/guides.py and docs/dev/docs-tests.md).

``guide_tools.py pip MARKER install ARGS...``
    Stands in for ``pip`` in a guide's shell. A guide's ``pip install 'entrepot[clients]'``
    installs nothing here (the test venv has everything): it checks that the requirements are
    installed, and records the distributions it would have installed in MARKER, which is what
    lets the guide's python blocks import them.

``guide_tools.py python FD MARKER``
    One python session for a guide's python blocks: reads ``{"filename", "line", "code", "env"}``
    lines on stdin, runs each block in one shared namespace, answers ``{"ok": bool}`` on FD.
    Modules of the optional extras that the guide did not install raise ModuleNotFoundError, as
    they would after the quick start; and ``requests`` calls written in a guide raise on an HTTP
    error, so an example that gets a 4xx fails its test.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import sys
import traceback
from importlib import metadata
from pathlib import Path

from packaging.markers import default_environment
from packaging.requirements import Requirement

PROJECT = "entrepot"


def _name(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def closure(requirements: list[str], extras: frozenset[str] = frozenset()) -> set[str]:
    """Names of the distributions that these requirements pull in (recursively, with extras)."""
    names: set[str] = set()
    visited: set[tuple[str, frozenset[str]]] = set()
    todo = [(r, extras) for r in requirements]
    while todo:
        text, active = todo.pop()
        req = Requirement(text)
        if req.marker is not None:
            envs = [{**default_environment(), "extra": e} for e in (active or {""})]
            if not any(req.marker.evaluate(env) for env in envs):
                continue
        name, wanted = _name(req.name), frozenset(req.extras)
        if (name, wanted) in visited:
            continue
        visited.add((name, wanted))
        names.add(name)
        try:
            reqs = metadata.requires(req.name) or []
        except metadata.PackageNotFoundError:
            continue
        todo.extend((r, wanted) for r in reqs)
    return names


def optional_distributions() -> set[str]:
    """Distributions that the project's extras bring and its core dependencies do not."""
    extras = metadata.metadata(PROJECT).get_all("Provides-Extra") or []
    return closure([f"{PROJECT}[{','.join(extras)}]"]) - closure([PROJECT])


@functools.cache
def _module_owners() -> dict[str, list[str]]:
    return metadata.packages_distributions()


def _top_level_modules(dists: set[str]) -> set[str]:
    modules: set[str] = set()
    for module, owners in _module_owners().items():
        if any(_name(owner) in dists for owner in owners):
            modules.add(module)
    return modules


# --- pip ---------------------------------------------------------------------------------------
def pip(marker: Path, args: list[str]) -> int:
    if not args or args[0] != "install":
        print(
            f"docs tests: only `pip install` is understood here, not `pip {' '.join(args)}`", file=sys.stderr
        )
        return 2
    wanted: list[str] = []
    for arg in args[1:]:
        if arg.startswith("-"):
            continue  # -e, -U, -q, --upgrade ...
        m = re.fullmatch(r"(?:entrepot|\.|\./?)(\[(?P<extras>[^\]]*)\])?", arg)
        if m:
            extras = ",".join(e.strip() for e in (m["extras"] or "").split(",") if e.strip())
            wanted.append(f"{PROJECT}[{extras}]" if extras else PROJECT)
        else:
            wanted.append(arg)
    installed = closure(wanted)
    for text in wanted:
        req = Requirement(text)
        known = set(metadata.metadata(PROJECT).get_all("Provides-Extra") or [])
        if _name(req.name) == PROJECT and not set(req.extras) <= known:
            print(f"docs tests: entrepot has no extra {sorted(set(req.extras) - known)}", file=sys.stderr)
            return 1
        for dist in closure([text]):
            try:
                metadata.version(dist)
            except metadata.PackageNotFoundError:
                print(f"docs tests: {text} needs {dist}, which the test venv lacks", file=sys.stderr)
                return 1
    done = set(json.loads(marker.read_text())) if marker.exists() else set()
    marker.write_text(json.dumps(sorted(done | installed)))
    print(f"(docs tests: {' '.join(args[1:])} is installed)")
    return 0


# --- python ------------------------------------------------------------------------------------
class _ExtrasGuard:
    """Refuses imports of optional modules the guide has not installed."""

    def __init__(self, marker: Path):
        self.marker = marker
        self.optional = optional_distributions()
        self.blocked: set[str] = set()
        self.refresh()

    def refresh(self) -> None:
        allowed = set(json.loads(self.marker.read_text())) if self.marker.exists() else set()
        self.blocked = _top_level_modules(self.optional - allowed)

    def find_spec(self, name: str, path: object = None, target: object = None) -> None:
        top = name.partition(".")[0]
        if top in self.blocked:
            raise ModuleNotFoundError(
                f"No module named '{top}' (not installed by the quick start; the guide must say "
                "which extra installs it, e.g. pip install 'entrepot[clients]')",
                name=top,
            )
        return None


def _raise_for_guide_requests(guides: str) -> None:
    """requests called from a guide's own code raises on HTTP errors (the libraries' calls do not)."""
    import requests

    if getattr(requests.Session.request, "_docs_tests", False):
        return
    original = requests.Session.request
    package = os.path.dirname(requests.__file__)

    def request(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        response = original(self, *args, **kwargs)
        frame = sys._getframe(1)
        while frame is not None and frame.f_code.co_filename.startswith(package):
            frame = frame.f_back
        if frame is not None and frame.f_code.co_filename == guides and response.status_code >= 400:
            raise requests.HTTPError(
                f"{response.status_code} for {response.request.method} {response.url}: {response.text[:500]}",
                response=response,
            )
        return response

    request._docs_tests = True  # type: ignore[attr-defined]
    requests.Session.request = request  # type: ignore[method-assign]


def python(fd: int, marker: Path) -> int:
    answers = os.fdopen(fd, "w")
    guard = _ExtrasGuard(marker)
    sys.meta_path.insert(0, guard)  # type: ignore[arg-type]
    namespace: dict[str, object] = {"__name__": "__main__"}
    for line in sys.stdin:
        request = json.loads(line)
        os.environ.clear()
        os.environ.update(request["env"])
        guard.refresh()
        if "requests" not in guard.blocked:
            with contextlib.suppress(ImportError):
                _raise_for_guide_requests(request["filename"])
        # padded so that tracebacks name the guide and its line numbers
        source = "\n" * request["line"] + request["code"]
        ok = True
        try:
            exec(compile(source, request["filename"], "exec"), namespace)
        except SystemExit as exc:
            ok = exc.code in (None, 0)
            if not ok:
                traceback.print_exc()
        except BaseException:
            ok = False
            traceback.print_exc()
        sys.stdout.flush()
        sys.stderr.flush()
        answers.write(json.dumps({"ok": ok}) + "\n")
        answers.flush()
    return 0


def main(argv: list[str]) -> int:
    command, *rest = argv
    if command == "pip":
        return pip(Path(rest[0]), rest[1:])
    if command == "python":
        return python(int(rest[0]), Path(rest[1]))
    raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
