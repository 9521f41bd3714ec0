"""The project's set-up stays in step: lock and conda env, CI and README, lint and format."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import yaml
from conftest import REPO


def test_conda_env_pins_match_the_lock():
    lock = tomllib.loads((REPO / "uv.lock").read_text())
    locked = {p["name"]: p["version"] for p in lock["package"]}
    env = yaml.safe_load((REPO / "envs" / "corruptlab.yaml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict))
    pins = dict(line.split("==") for line in pip)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    direct = {re.split(r"[<>=!~ \[]", d, maxsplit=1)[0].lower() for d in project["dependencies"]}
    assert set(pins) == direct
    assert {name: locked[name] for name in pins} == pins


def test_every_rule_names_the_conda_env_and_it_exists():
    for smk in (REPO / "workflow" / "rules").glob("*.smk"):
        for env in re.findall(r'conda:\s*\n\s*"([^"]+)"', smk.read_text()):
            assert (smk.parent / env).resolve() == REPO / "envs" / "corruptlab.yaml", smk


def test_ci_and_readme_run_the_same_commands():
    readme = (REPO / "README.md").read_text()
    assert "uv run snakemake --cores all" in readme and "uv run pytest" in readme
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^uv run pytest\b", ci, re.M)


def test_snakemake_lint_is_clean():
    out = subprocess.run(
        [sys.executable, "-m", "snakemake", "--lint"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert "Congratulations, your workflow is in a good condition!" in out.stdout + out.stderr, (
        out.stdout + out.stderr
    )


def test_snakefmt_and_ruff_are_clean():
    bindir = REPO / ".venv" / "bin"
    fmt = subprocess.run(
        [sys.executable, "-m", "snakefmt", "--check", "Snakefile", "workflow/rules"],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert fmt.returncode == 0, fmt.stderr
    ruff = subprocess.run(
        [str(bindir / "ruff") if (bindir / "ruff").exists() else "ruff", "check", "."],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert ruff.returncode == 0, ruff.stdout
