"""Fingerprints of the library code a rule depends on, derived from what its script imports.

Snakemake notices edits to a rule's own script but not to the modules that script imports.
Each rule therefore gets ``params: code=script_fingerprint(<its script>)``: a hash over the
source of every corruptlab module the script reaches, transitively, through any ``import`` or
``from ... import`` statement (at module level or inside a function; ``if TYPE_CHECKING:``
blocks aside, since they never run). An edit to one of them changes the param, and Snakemake
reruns that rule and what follows; no list of modules is kept by hand, so none can drift.

The imports are read from the source with ``ast``: deriving a fingerprint imports nothing, so
the Snakefile stays light. A module name is dotted below the package (``data.noise``; the
package itself, ``corruptlab/__init__.py``, is ``""``).
"""

from __future__ import annotations

import ast
import hashlib
from functools import cache
from pathlib import Path

PACKAGE = "corruptlab"
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def module_path(module: str) -> Path:
    """The source file of ``corruptlab.<module>`` (a package's ``__init__.py``)."""
    base = PACKAGE_DIR.joinpath(*module.split(".")) if module else PACKAGE_DIR
    if base.is_dir():
        return base / "__init__.py"
    return base.with_suffix(".py")


def _is_module(module: str) -> bool:
    return module_path(module).is_file()


@cache
def _module_digest(module: str) -> str:
    path = module_path(module)
    if not path.is_file():
        raise FileNotFoundError(f"fingerprint: no module {PACKAGE}.{module} at {path}")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(*modules: str) -> str:
    """A short hash over the source of the given ``corruptlab`` modules (names without prefix)."""
    h = hashlib.sha256()
    for module in sorted(set(modules)):
        h.update(module.encode() + b"\0" + _module_digest(module).encode() + b"\0")
    return h.hexdigest()[:16]


def _type_checking_block(node: ast.AST) -> bool:
    return isinstance(node, ast.If) and (
        (isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING")
        or (isinstance(node.test, ast.Attribute) and node.test.attr == "TYPE_CHECKING")
    )


def _import_nodes(tree: ast.AST):
    """Every import statement that can run: anywhere but under ``if TYPE_CHECKING:``."""
    stack = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Import | ast.ImportFrom):
            yield node
        for child in ast.iter_child_nodes(node):
            if not _type_checking_block(child):
                stack.append(child)


def _within(dotted: str) -> str | None:
    """``corruptlab.a.b`` -> ``a.b``; ``corruptlab`` -> ``""``; anything else -> None."""
    if dotted == PACKAGE:
        return ""
    if dotted.startswith(PACKAGE + "."):
        return dotted[len(PACKAGE) + 1 :]
    return None


def _with_parents(module: str) -> set[str]:
    """A module and the packages importing it runs first (``a.b`` -> ``a.b``, ``a``, ``""``)."""
    parts = module.split(".") if module else []
    return {".".join(parts[:i]) for i in range(len(parts) + 1)}


def direct_imports(source: str, module: str | None = None) -> set[str]:
    """The corruptlab modules (below the package) that ``source`` imports. ``module`` names the
    source's own module, for relative imports; a script has none."""
    found: set[str] = set()
    package = module.rsplit(".", 1)[0] if module and "." in module else ""
    if module is not None and module_path(module).name == "__init__.py":
        package = module
    for node in _import_nodes(ast.parse(source)):
        if isinstance(node, ast.Import):
            targets = [_within(alias.name) for alias in node.names]
            found |= {t for t in targets if t is not None}
            continue
        if node.level:  # relative: from . import x, from ..a import b
            if module is None:
                continue
            parts = package.split(".") if package else []
            base_parts = parts[: len(parts) - (node.level - 1)] if node.level > 1 else parts
            base = ".".join([*base_parts, *([node.module] if node.module else [])])
        else:
            base = _within(node.module or "")
            if base is None:
                continue
        found.add(base)
        for alias in node.names:  # from corruptlab.a import b: b may be a module
            candidate = f"{base}.{alias.name}" if base else alias.name
            if alias.name != "*" and _is_module(candidate):
                found.add(candidate)
    return found


@cache
def _module_imports(module: str) -> frozenset[str]:
    return frozenset(direct_imports(module_path(module).read_text(), module))


def reached_modules(source: str) -> list[str]:
    """Every corruptlab module that running ``source`` (a script) can import, transitively,
    with the packages around each, sorted."""
    todo = set().union(*(_with_parents(m) for m in direct_imports(source)))
    seen: set[str] = set()
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        if not _is_module(module):
            raise FileNotFoundError(f"fingerprint: no module {PACKAGE}.{module}")
        seen.add(module)
        for imported in _module_imports(module):
            todo |= _with_parents(imported) - seen
    return sorted(seen)


def script_modules(script: str | Path) -> list[str]:
    """The corruptlab modules a rule's script reaches (see ``reached_modules``)."""
    return reached_modules(Path(script).read_text())


def script_fingerprint(script: str | Path, *sources: str | Path) -> str:
    """The fingerprint of a rule's script: every corruptlab module it reaches, and, for a job
    that imports modules by name at run time (a study kind's, see corruptlab.studies), those
    modules' files ``sources``: their text and every corruptlab module they reach."""
    modules = set(script_modules(script))
    texts = []
    for source in sources:
        text = Path(source).read_text()
        modules |= set(reached_modules(text))
        texts.append(text)
    if not texts:
        return fingerprint(*modules)
    h = hashlib.sha256(fingerprint(*modules).encode())
    for text in texts:
        h.update(b"\0" + text.encode())
    return h.hexdigest()[:16]
