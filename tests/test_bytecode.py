"""The environment's bytecode is compiled once after each install, not on every command."""

from __future__ import annotations

import importlib.util
import os
import tomllib

from conftest import REPO

from corruptlab.core.bytecode import compile_site_packages


def _pyc(path):
    return os.path.exists(importlib.util.cache_from_source(str(path)))


def test_compiles_missing_bytecode_once_then_again_after_an_install(tmp_path):
    site, stamp = tmp_path / "site-packages", tmp_path / "stamp"
    (site / "pkg").mkdir(parents=True)
    (site / "pkg" / "__init__.py").write_text("X = 1\n")
    (site / "top.py").write_text("Y = 2\n")
    assert not _pyc(site / "top.py")

    assert compile_site_packages([site], stamp, workers=1) is not None
    assert _pyc(site / "top.py") and _pyc(site / "pkg" / "__init__.py") and stamp.exists()
    assert compile_site_packages([site], stamp, workers=1) is None  # nothing installed since

    (site / "new.py").write_text("Z = 3\n")  # an install adds entries to site-packages
    later = site.stat().st_mtime_ns + 10**9
    os.utime(site, ns=(later, later))
    assert compile_site_packages([site], stamp, workers=1) is not None
    assert _pyc(site / "new.py")
    assert compile_site_packages([site], stamp, workers=1) is None


def test_no_directory_no_work(tmp_path):
    assert compile_site_packages([tmp_path / "missing"], tmp_path / "stamp") is None
    assert not (tmp_path / "stamp").exists()


def test_uv_run_does_not_recompile_and_the_workflow_does_instead():
    uv = tomllib.loads((REPO / "pyproject.toml").read_text()).get("tool", {}).get("uv", {})
    assert not uv.get("compile-bytecode", False)  # uv issue #12202: every `uv run` recompiles
    snakefile = (REPO / "Snakefile").read_text()
    assert "onstart:" in snakefile and "compile_site_packages()" in snakefile
