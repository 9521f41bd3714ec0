"""Bytecode of the environment's packages, compiled once after each install, before the first job.

Every Snakemake job is a fresh Python process that imports torch, pandas and the rest. Where
``PYTHONDONTWRITEBYTECODE`` is set (containers, some clusters) or jobs cannot write to the
environment, Python never caches the ``.pyc`` files it compiles, so without precompiled ones
every job compiles those packages again: about 2 s more per job on 2 cores. uv can compile at
install (``[tool.uv] compile-bytecode = true``), but then every ``uv run`` walks all of
site-packages again (uv issue #12202): 0.5-2 s and a "Bytecode compiled 12716 files" line before
each command. So the workflow compiles them itself when a run starts (Snakefile, ``onstart:``):
only when site-packages changed since the last time (its directory's modification time, kept in
a stamp file beside the environment), otherwise it costs one ``stat``.
"""

from __future__ import annotations

import compileall
import os
import sys
import sysconfig
import time
from collections.abc import Sequence
from pathlib import Path

STAMP = ".corruptlab-bytecode"


def site_packages() -> list[Path]:
    """The running interpreter's site-packages directories (pure and platform-specific)."""
    paths = sysconfig.get_paths()
    return sorted({Path(paths["purelib"]), Path(paths["platlib"])})


def _state(dirs: Sequence[Path]) -> str:
    return "\n".join(f"{d} {d.stat().st_mtime_ns}" for d in dirs)


def compile_site_packages(
    dirs: Sequence[str | os.PathLike[str]] | None = None,
    stamp: str | os.PathLike[str] | None = None,
    workers: int | None = None,
) -> float | None:
    """Write the missing or stale ``.pyc`` files of ``dirs`` (default: the running interpreter's
    site-packages) unless they are unchanged since the last call: the seconds it took, or None
    when there was nothing to do.

    Directories the process cannot write to (a system Python) are left alone. ``stamp`` (default
    ``<sys.prefix>/.corruptlab-bytecode``) records the directories' modification times after a
    compilation; installing or removing a package changes them.
    """
    found = [Path(d) for d in (site_packages() if dirs is None else dirs)]
    found = [d for d in found if d.is_dir() and os.access(d, os.W_OK)]
    if not found:
        return None
    stamp = Path(sys.prefix) / STAMP if stamp is None else Path(stamp)
    state = _state(found)
    try:
        if stamp.read_text() == state:
            return None
    except OSError:
        pass
    workers = min(4, os.cpu_count() or 1) if workers is None else workers
    start = time.monotonic()
    for d in found:
        # quiet=2: some packages ship files that are not Python 3 (templates, tests); as pip and
        # uv do, those are skipped without a word
        compileall.compile_dir(d, quiet=2, workers=workers)
    try:  # the state after compiling: a new top-level __pycache__ changes a directory's time
        stamp.write_text(_state(found))
    except OSError:
        pass
    return time.monotonic() - start
