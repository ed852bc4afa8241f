"""The code part of a stage's cache key, read from the code itself so it cannot go stale.

A stage's key hashes the syntax tree of its module and of every photoforge module it imports,
directly or through others (comments and formatting do not count, code and docstrings do), and the
versions of the third-party modules any of them imports (inside functions too). Edit a stage or a
helper it uses and its key changes, and so do the keys of the stages below it, which hash its key.

Not seen: modules named only in strings (importlib.import_module("x")); photoforge does not do that.
"""

from __future__ import annotations

import ast
import functools
import importlib.metadata
import importlib.util
import sys
from dataclasses import dataclass
from pathlib import Path

from photoforge.hashing import combine

# The stage machinery itself: how an artefact is stored and locked, never what it contains.
# Editing these must not recompute every artefact of every workspace.
MACHINERY = frozenset(
    {
        "photoforge",
        "photoforge.stage",
        "photoforge.store",
        "photoforge.locks",
        "photoforge.diskspace",
        "photoforge.hashing",
        "photoforge.errors",
        "photoforge.code_keys",
    }
)
_OWN = "photoforge"
_LIBRARY = Path(__file__).resolve().parent


@dataclass(frozen=True)
class CodeFingerprint:
    code: str  # hash of the syntax trees of the module and the photoforge modules it reaches
    modules: tuple[str, ...]  # those modules, sorted
    libraries: dict[str, str]  # third-party import name -> version, without a local build tag


@functools.cache
def fingerprint(module: str) -> CodeFingerprint:
    """The code and library identity of `module` (a dotted name), through its photoforge imports."""
    seen: dict[str, str] = {}
    libraries: set[str] = set()
    pending = [module]
    while pending:
        name = pending.pop()
        if name in seen or name in MACHINERY:
            continue
        tree = _syntax_tree(name)
        seen[name] = ast.dump(tree)  # no comments, layout or line numbers: only what the code says
        for imported in _imports(tree, name):
            top = imported.partition(".")[0]
            if top == _OWN:
                pending.append(imported)
            elif top not in sys.stdlib_module_names and top != "__future__":
                libraries.add(top)
    return CodeFingerprint(
        code=combine({name: seen[name] for name in sorted(seen)}),
        modules=tuple(sorted(seen)),
        libraries={lib: module_version(lib) for lib in sorted(libraries)},
    )


def module_version(top_level: str) -> str:
    """The version of the distribution that provides an import name (`cv2`: opencv-python-headless).

    Keyed by import name, so pycolmap and pycolmap-cuda12, or torch `+cpu` and `+cu124`, key alike
    and a CPU worker and a GPU worker reuse each other's artefacts.
    """
    for dist in _distributions().get(top_level, ()):
        try:
            return importlib.metadata.version(dist).split("+")[0]
        except importlib.metadata.PackageNotFoundError:
            continue
    return "absent"


@functools.cache
def _distributions() -> dict[str, list[str]]:
    return dict(importlib.metadata.packages_distributions())


def _syntax_tree(module: str) -> ast.Module:
    source = _source(module)
    if source is None:
        raise ImportError(f"{module}: no Python source to fingerprint")
    return ast.parse(source.read_text(encoding="utf-8"), filename=str(source))


def _source(module: str) -> Path | None:
    """A module's .py file, found without importing it or its package (their imports may be heavy)."""
    if module.partition(".")[0] == _OWN:
        base = _LIBRARY.joinpath(*module.split(".")[1:])
        for candidate in (base / "__init__.py", base.with_suffix(".py")):
            if candidate.is_file():
                return candidate
        return None
    spec = importlib.util.find_spec(module)  # a stage outside photoforge (a test's toy stage)
    return Path(spec.origin) if spec is not None and spec.origin and spec.origin.endswith(".py") else None


def _imports(tree: ast.Module, module: str) -> list[str]:
    """Every module `module` imports, at any depth of its code, as absolute dotted names."""
    package = module if _is_package(module) else module.rpartition(".")[0]
    found: list[str] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _absolute(node, package)
            found.append(base)
            if base.partition(".")[0] == _OWN:  # `from photoforge.geometry import meshing`: a submodule
                found += [f"{base}.{a.name}" for a in node.names if _source(f"{base}.{a.name}") is not None]
    return found


def _absolute(node: ast.ImportFrom, package: str) -> str:
    if not node.level:
        return node.module or ""
    parts = package.split(".")
    base = ".".join(parts[: len(parts) - node.level + 1])
    return f"{base}.{node.module}" if node.module else base


def _is_package(module: str) -> bool:
    source = _source(module)
    return source is not None and source.name == "__init__.py"
