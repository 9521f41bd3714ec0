"""Fingerprints of the library code a rule depends on.

Snakemake notices edits to a rule's own script but not to the modules that script imports.
Each rule therefore gets ``params: code=fingerprint(...)`` over the corruptlab modules it uses;
an edit to one of them changes the param, and Snakemake reruns that rule and what follows.
Reads the source files only: importing this module (from the Snakefile) costs nothing.
"""

from __future__ import annotations

import hashlib
from functools import cache
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parent


@cache
def _module_digest(module: str) -> str:
    path = PACKAGE_DIR / (module.replace(".", "/") + ".py")
    if not path.is_file():
        raise FileNotFoundError(f"fingerprint: no module corruptlab.{module} at {path}")
    return hashlib.sha256(path.read_bytes()).hexdigest()


def fingerprint(*modules: str) -> str:
    """A short hash over the source of the given ``corruptlab`` modules (names without prefix)."""
    h = hashlib.sha256()
    for module in sorted(set(modules)):
        h.update(module.encode() + b"\0" + _module_digest(module).encode() + b"\0")
    return h.hexdigest()[:16]
