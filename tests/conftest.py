"""Shared fixtures: a copy of the workflow in a temporary directory, run by the snakemake CLI."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
import tempfile
import time
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


def _command(workdir: Path, args: tuple[str, ...]) -> tuple[list[str], dict[str, str]]:
    """The snakemake CLI of this environment for ``workdir``: its command line and environment."""
    env = {**os.environ, "PYTHONPATH": str(workdir / "src")}
    stub = _stub_scontrol_dir()
    if stub is not None:
        env["PATH"] = f"{stub}{os.pathsep}{env['PATH']}"
    return [sys.executable, "-m", "snakemake", "--cores", "2", *args], env


def snakemake(
    workdir: Path, *args: str, check: bool = True, timeout: float = SNAKEMAKE_TIMEOUT
) -> subprocess.CompletedProcess:
    """Run the snakemake CLI of this environment in ``workdir`` (bounded; SIGINT on timeout, which
    also makes Snakemake cancel the SLURM jobs it submitted)."""
    cmd, env = _command(workdir, args)
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


class Background:
    """A snakemake run in ``workdir`` that goes on while other tests run (its output in
    ``workdir/snakemake.log``), bounded by ``timeout`` seconds from its start."""

    def __init__(self, workdir: Path, *args: str, timeout: float = SNAKEMAKE_TIMEOUT):
        cmd, env = _command(workdir, args)
        self.workdir, self.args, self.timeout = workdir, args, timeout
        self.started = time.monotonic()
        self.log = workdir / "snakemake.log"
        with self.log.open("w") as out:
            self.proc = subprocess.Popen(
                cmd, cwd=workdir, env=env, stdout=out, stderr=subprocess.STDOUT, text=True
            )

    def wait(self) -> subprocess.CompletedProcess:
        """Its result once it ends; past its time, SIGINT (Snakemake then cancels the SLURM jobs
        it submitted) and a failed test."""
        left = max(0.0, self.timeout - (time.monotonic() - self.started))
        try:
            self.proc.wait(timeout=left)
        except subprocess.TimeoutExpired:
            self.stop()
            out = self.log.read_text()
            pytest.fail(f"snakemake {' '.join(self.args)} timed out:\n{out[-3000:]}")
        return subprocess.CompletedProcess(self.args, self.proc.returncode, self.log.read_text())

    def stop(self) -> None:
        """SIGINT if it still runs, and wait for it to clean up."""
        if self.proc.poll() is None:
            self.proc.send_signal(2)
            try:
                self.proc.wait(timeout=120)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


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


@pytest.fixture(scope="session", autouse=True)
def slurm_in_background(request, tmp_path_factory):
    """tests/test_slurm.py's run through SLURM, started with the session when those tests are
    collected and the CI cluster is up (else None): most of its few minutes go to waiting for
    SLURM's time limit to kill a job, and the rest of the suite runs meanwhile."""
    if not any(item.get_closest_marker("slurm") for item in request.session.items):
        yield None
        return
    import test_slurm

    if test_slurm.cluster_state() is not None:
        yield None
        return
    run = test_slurm.start_on_slurm(tmp_path_factory.mktemp("slurm"))
    yield run
    run.stop()  # the cluster tests never waited for it (deselected, or the session stopped early)
