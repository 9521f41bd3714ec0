"""Shared fixtures: a copy of the workflow in a temporary directory, run by the snakemake CLI."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
WORKFLOW_PARTS = ["Snakefile", "workflow", "scripts", "src", "config", "profiles", "envs"]
SNAKEMAKE_TIMEOUT = 600


def copy_workflow(dest: Path) -> Path:
    """Copy what the workflow needs (not results) into ``dest``; edits there stay there."""
    for part in WORKFLOW_PARTS:
        src = REPO / part
        if src.is_dir():
            shutil.copytree(src, dest / part, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(src, dest / part)
    return dest


@functools.cache
def _stub_scontrol_dir() -> str | None:
    """A directory holding a ``scontrol`` that fails at once, where the real one is installed but
    no SLURM controller answers (a developer's machine after ``.ci/slurm down``): the SLURM
    executor plugin runs ``scontrol show config`` at every snakemake start and waits about 9 s
    for it there, on each of the suite's ~100 snakemake runs. None where SLURM answers (CI, whose
    cluster tests need the real one) or where scontrol is not installed (it fails at once)."""
    exe = shutil.which("scontrol")
    if exe is None:
        return None
    try:
        answered = subprocess.run([exe, "show", "config"], capture_output=True, timeout=20)
        if answered.returncode == 0:
            return None
    except subprocess.TimeoutExpired:
        pass
    directory = Path(tempfile.mkdtemp(prefix="corruptlab-no-slurm-"))
    stub = directory / "scontrol"
    stub.write_text("#!/bin/sh\nexit 1\n")
    stub.chmod(0o755)
    return str(directory)


def snakemake(
    workdir: Path, *args: str, check: bool = True, timeout: float = SNAKEMAKE_TIMEOUT
) -> subprocess.CompletedProcess:
    """Run the snakemake CLI of this environment in ``workdir`` (bounded; SIGINT on timeout, which
    also makes Snakemake cancel the SLURM jobs it submitted)."""
    env = {**os.environ, "PYTHONPATH": str(workdir / "src")}
    stub = _stub_scontrol_dir()
    if stub is not None:
        env["PATH"] = f"{stub}{os.pathsep}{env['PATH']}"
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args]
    proc = subprocess.Popen(
        cmd, cwd=workdir, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(2)
        out, _ = proc.communicate(timeout=120)
        pytest.fail(f"snakemake {' '.join(args)} timed out:\n{out[-3000:]}")
    result = subprocess.CompletedProcess(cmd, proc.returncode, out, "")
    if check and proc.returncode != 0:
        pytest.fail(f"snakemake {' '.join(args)} failed ({proc.returncode}):\n{out[-5000:]}")
    return result


def planned_jobs(output: str) -> dict[str, int]:
    """Rule -> job count from the 'Job stats' table of a dry run ({} if nothing to do)."""
    jobs: dict[str, int] = {}
    lines = output.splitlines()
    for i, line in enumerate(lines):
        if line.strip() == "Job stats:":
            for row in lines[i + 3 :]:
                parts = row.split()
                if len(parts) != 2 or parts[0] == "total":
                    break
                jobs[parts[0]] = int(parts[1])
            break
    return jobs


@pytest.fixture(scope="session")
def default_run(tmp_path_factory):
    """The README's first command on the default config (config/config.yaml: the four quick
    studies) in a copy of the workflow, once per session: (its directory, its log)."""
    wd = copy_workflow(tmp_path_factory.mktemp("default"))
    result = snakemake(wd)
    return wd, result.stdout
