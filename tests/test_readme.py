"""The README as a newcomer follows it: its first study, its commands and its pandas line, each
taken from README.md itself, so that these tests break when the README drifts from the workflow."""

from __future__ import annotations

import ast
import contextlib
import glob
import os
import re
import shlex
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
import yaml
from conftest import REPO, copy_workflow, planned_jobs, snakemake

README = (REPO / "README.md").read_text()
DEFAULT_STUDIES = [
    "label_noise_quick",
    "corruption_tta_quick",
    "ood_quick",
    "memorization_quick",
    "no_gd_quick",
    "distillation_quick",
]


def blocks(language: str) -> list[str]:
    """The README's fenced code blocks in ``language``, in order (indented ones included)."""
    pattern = rf"^([ \t]*)```{language}\n(.*?)^\1```"
    found = re.findall(pattern, README, re.M | re.S)
    return [re.sub(rf"^{indent}", "", block, flags=re.M) for indent, block in found]


def commands() -> list[str]:
    """Every `uv run ...` command in the README's bash blocks, comments and line breaks removed."""
    found = []
    for block in blocks("bash"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith("uv run"):
                found.append(" ".join(line.split()))
    return found


def snakemake_args(command: str) -> list[str]:
    """The README command's snakemake arguments, for conftest.snakemake (which sets the cores)."""
    words = shlex.split(command)
    assert words[:3] == ["uv", "run", "snakemake"], command
    args = words[3:]
    if "--cores" in args:
        i = args.index("--cores")
        del args[i : i + 2]
    return args


def first_study_commands() -> tuple[str, str]:
    (plan,) = [c for c in commands() if "-n" in c.split() and "my_study.yaml" in c]
    (run,) = [c for c in commands() if "-n" not in c.split() and c.endswith("my_study.yaml")]
    return plan, run


# ------------------------------------------------------------------------------ the first study


def test_the_first_study_is_small_offline_and_names_its_file():
    (text,) = [b for b in blocks("yaml") if "my_study" in b]
    (study,) = yaml.safe_load(text)["studies"].values()
    assert study["dataset"] == "mnist5k"  # bundled: no download
    assert study["patience"] <= study["max_epochs"] and study["seeds"] >= 2
    assert "config/my_study.yaml" in README
    plan, run = first_study_commands()
    assert "--configfile config/my_study.yaml" in plan and "--quiet rules" in plan


@pytest.fixture(scope="module")
def first_study(tmp_path_factory):
    """The README's first study written where the README says, planned and run by its commands:
    (the working directory, the plan's output, the run's output)."""
    wd = copy_workflow(tmp_path_factory.mktemp("first"))
    (text,) = [b for b in blocks("yaml") if "my_study" in b]
    (wd / "config" / "my_study.yaml").write_text(text)
    plan, run = first_study_commands()
    planned = snakemake(wd, *snakemake_args(plan)).stdout
    ran = snakemake(wd, *snakemake_args(run)).stdout
    return wd, planned, ran


@pytest.mark.e2e
def test_the_first_study_plans_and_runs_where_the_readme_says(first_study):
    wd, planned, ran = first_study
    jobs = planned_jobs(planned)
    assert jobs["train_seeds0_1"] == 2 * 2 == jobs["evaluate_seeds0_1"]  # 8 runs, 2 per job
    assert "8 runs" in README
    assert "Shell command" not in planned  # a dry run lists jobs, not empty shell commands
    assert "my_study: " in ran  # the claims' verdicts, printed at the end
    section = README[README.index("## Your first study") : README.index("## Where results land")]
    paths = set(re.findall(r"`(results/my_study/[^`]*)`", section))
    assert len(paths) >= 4, paths
    for path in paths:
        if path.endswith("/"):  # a directory, possibly with <placeholders>
            pattern = re.sub(r"<[^>]+>", "*", path)
            assert glob.glob(str(wd / pattern)), path
        else:
            assert (wd / path).is_file(), path
    for table in re.findall(r"`(\w+\.parquet)`", section):
        frame = pd.read_parquet(wd / "results/my_study/tables" / table)
        assert len(frame) and set(frame["study"]) == {"my_study"}, table
    runs = pd.read_parquet(wd / "results/my_study/tables/runs.parquet")
    assert runs["run_id"].nunique() == 8 and set(runs["status"]) <= {"ok", "diverged"}


@pytest.mark.e2e
def test_a_killed_run_leaves_a_lock_that_the_readme_unlock_removes(first_study):
    """The README's crash text: a run killed hard leaves its lock, the next run stops with
    LockException, and `--unlock` then the run again finish the work."""
    wd, _, _ = first_study
    _, run = first_study_commands()
    args = snakemake_args(run)
    env = {**os.environ, "PYTHONPATH": str(wd / "src")}
    cmd = [sys.executable, "-m", "snakemake", "--cores", "2", *args, "--forcerun", "runs_table"]
    proc = subprocess.Popen(
        cmd,
        cwd=wd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + 300
    for line in proc.stdout:  # the lock is taken before the first job starts
        if line.startswith(("rule ", "localrule ")) or time.monotonic() > deadline:
            break
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # Snakemake and its jobs, as a machine going down
    proc.wait()
    locked = snakemake(wd, *args, check=False)
    assert locked.returncode != 0 and "Directory cannot be locked" in locked.stdout
    (unlock,) = [c for c in commands() if "--unlock" in c]
    snakemake(wd, *snakemake_args(unlock))
    again = snakemake(wd, *args).stdout
    assert "Directory cannot be locked" not in again
    assert (wd / "results/my_study/tables/runs.parquet").is_file()


# ------------------------------------------------------------------- the default run's outputs


def pandas_line() -> str:
    """The README's pandas answer: its imports, then one line that reads every study's runs."""
    section = README[README.index("All runs of all studies in one table") :]
    (block,) = blocks("python")
    assert block in section
    return block.strip()


def test_the_pandas_line_is_one_line_that_parses():
    imports, line = pandas_line().split("\n\n")
    assert imports == "import glob, pandas as pd"
    assert line.startswith("runs = ") and "\n" not in line
    assert "results/*/tables/runs.parquet" in line
    ast.parse(pandas_line())


def _run_line(directory) -> pd.DataFrame:
    scope: dict = {}
    cwd = os.getcwd()
    os.chdir(directory)
    try:
        exec(pandas_line(), scope)
    finally:
        os.chdir(cwd)
    return scope["runs"]


@pytest.mark.e2e
def test_all_runs_of_all_studies_in_one_table(default_run, tmp_path):
    wd, _ = default_run
    tables = {s: pd.read_parquet(wd / f"results/{s}/tables/runs.parquet") for s in DEFAULT_STUDIES}
    runs = _run_line(wd)
    assert sorted(runs["study"].unique()) == sorted(DEFAULT_STUDIES)
    assert len(runs) == sum(map(len, tables.values()))
    assert set(runs.columns) == set().union(*(t.columns for t in tables.values()))
    # studies whose tables have different columns: each keeps its own, the others' are empty
    for i, (study, table) in enumerate(tables.items()):
        (tmp_path / f"results/{study}/tables").mkdir(parents=True)
        extra = table.assign(**{f"only_{study}": 1.0}) if i == 0 else table.drop(columns="seed")
        extra.to_parquet(tmp_path / f"results/{study}/tables/runs.parquet")
    mixed = _run_line(tmp_path)
    first = mixed["study"] == DEFAULT_STUDIES[0]
    assert mixed.loc[first, f"only_{DEFAULT_STUDIES[0]}"].eq(1.0).all()
    assert mixed.loc[~first, f"only_{DEFAULT_STUDIES[0]}"].isna().all()
    assert mixed.loc[first, "seed"].notna().all() and mixed.loc[~first, "seed"].isna().all()


@pytest.mark.e2e
def test_the_report_command_writes_one_self_contained_file(default_run):
    wd, _ = default_run
    (command,) = [c for c in commands() if "--report" in c]
    snakemake(wd, *snakemake_args(command))
    report = wd / shlex.split(command)[-1]
    assert report.is_file() and report.stat().st_size > 100_000
    text = report.read_text(errors="replace")
    assert all(study in text for study in DEFAULT_STUDIES)


# -------------------------------------------------------- every command the README shows is run

# README command -> the tests that run it (file::test). Commands that train full studies on GPUs
# or submit to SLURM are exercised by their plan (`-n`) or by the tests of the CI cluster.
EXERCISED = {
    "uv run snakemake --cores all": [
        "tests/test_readme.py::test_all_runs_of_all_studies_in_one_table",  # its default_run
    ],
    "uv run pytest": ["tests/test_packaging.py::test_ci_and_readme_run_the_same_commands"],
    "uv run snakemake -n --quiet rules --configfile config/my_study.yaml": [
        "tests/test_readme.py::test_the_first_study_plans_and_runs_where_the_readme_says"
    ],
    "uv run snakemake --cores all --configfile config/my_study.yaml": [
        "tests/test_readme.py::test_the_first_study_plans_and_runs_where_the_readme_says"
    ],
    "uv run snakemake --report report.html": [
        "tests/test_readme.py::test_the_report_command_writes_one_self_contained_file",
        "tests/test_report.py::test_the_report_has_no_console_errors",
    ],
    "uv run snakemake --cores all --resources gpu=2 --configfile config/studies/label_noise.yaml": [
        "tests/test_readme.py::test_the_full_studies_plan_with_the_readme_options",
        "tests/test_gpus.py::test_concurrent_leases_get_distinct_gpus_and_restore_the_environment",
    ],
    "uv run snakemake --cores all --resources gpu=4 --configfile config/studies/label_noise.yaml": [
        "tests/test_readme.py::test_the_full_studies_plan_with_the_readme_options",
        "tests/test_gpus.py::test_concurrent_leases_get_distinct_gpus_and_restore_the_environment",
    ],
    "uv run snakemake --profile profiles/slurm -n --configfile config/studies/label_noise.yaml": [
        "tests/test_slurm.py::test_the_study_completes_on_slurm_with_the_same_tables_as_locally"
    ],
    "uv run snakemake --profile profiles/slurm --configfile config/studies/label_noise.yaml": [
        "tests/test_slurm.py::test_the_study_completes_on_slurm_with_the_same_tables_as_locally"
    ],
    "uv run python -m corruptlab.reproductions list": [
        "tests/test_reproductions.py::test_list_names_every_reproduction_config"
    ],
    "uv run python -m corruptlab.reproductions run hendrycks2017": [
        "tests/test_reproductions.py::test_every_reproduction_plans_on_the_real_mnist",
        "tests/test_reproductions.py::test_run_times_the_workflow_and_its_cpu_and_reports_a_failure",
        "tests/test_reproductions.py::test_collect_keeps_small_tables_png_figures_config_and_notes",
    ],
    "uv run python -m corruptlab.reproductions ledger": [
        "tests/test_reproductions.py::test_the_ledger_is_what_the_committed_tables_give"
    ],
    "uv run snakemake --unlock": [
        "tests/test_readme.py::test_a_killed_run_leaves_a_lock_that_the_readme_unlock_removes"
    ],
    "uv run snakemake --cores all label_noise_quick": [
        "tests/test_readme.py::test_one_study_runs_alone_by_its_name"
    ],
    "uv run snakemake -n --configfile config/studies/label_noise.yaml": [
        "tests/test_workflow.py::test_the_full_label_noise_study_plans_its_grid"
    ],
    "uv run snakemake --cores all --configfile config/studies/label_noise.yaml": [
        "tests/test_workflow.py::test_the_full_label_noise_study_plans_its_grid"
    ],
    "uv run snakemake --cores all --configfile config/studies/corruption_tta.yaml": [
        "tests/test_workflow.py::test_the_full_corruption_and_ood_studies_plan_their_grids"
    ],
    "uv run snakemake --cores all --configfile config/studies/ood.yaml": [
        "tests/test_workflow.py::test_the_full_corruption_and_ood_studies_plan_their_grids"
    ],
    "uv run snakemake --cores all --configfile config/studies/memorization.yaml": [
        "tests/test_readme.py::test_the_full_studies_plan_with_the_readme_options"
    ],
    "uv run snakemake --cores all --configfile config/studies/no_gd.yaml": [
        "tests/test_readme.py::test_the_full_studies_plan_with_the_readme_options"
    ],
    "uv run snakemake --cores all --configfile config/studies/batchnorm.yaml": [
        "tests/test_batchnorm_study.py::test_the_full_and_quick_configs_plan"
    ],
    "uv run snakemake --cores all --configfile config/studies/batchnorm_quick.yaml": [
        "tests/test_batchnorm_study.py::test_the_full_and_quick_configs_plan",
        "tests/test_batchnorm_study.py::test_a_batchnorm_study_runs_end_to_end",
    ],
    "uv run snakemake --cores all --configfile config/studies/distillation.yaml": [
        "tests/test_distillation_study.py::test_the_full_distillation_study_plans_the_papers_grid"
    ],
}


def test_every_command_the_readme_shows_is_run_by_a_test():
    assert set(commands()) == set(EXERCISED), "a README command without a test, or a stale entry"
    for tests in EXERCISED.values():
        for test in tests:
            path, name = test.split("::")
            assert re.search(rf"^def {name}\(", (REPO / path).read_text(), re.M), test


@pytest.mark.e2e
def test_the_full_studies_plan_with_the_readme_options(tmp_path):
    """The full studies cannot run offline (downloads, GPUs): their plans can, with the README's
    GPU options (the gpu resource bounds nothing in a plan, but must be accepted)."""
    wd = copy_workflow(tmp_path)
    plans = {}  # config file -> the README's arguments, those with --resources first
    snakemake_commands = [c for c in commands() if c.startswith("uv run snakemake")]
    for command in sorted(snakemake_commands, key=lambda c: "--resources" not in c):
        args = snakemake_args(command)
        if "--resources" in args or "config/studies/memorization.yaml" in args:
            plans.setdefault(args[args.index("--configfile") + 1], args)
    assert set(plans) == {"config/studies/label_noise.yaml", "config/studies/memorization.yaml"}
    for configfile, args in plans.items():
        jobs = planned_jobs(snakemake(wd, "-n", *args).stdout)
        if "label_noise" in configfile:
            assert "--resources" in args and jobs["train"] == 5 * 13 * 5 * 5
        elif "no_gd" in configfile:  # 13 method settings (edge-popup at 3 k) x 5 seeds
            assert jobs["train"] == 13 * 5 == jobs["ood"]
        else:
            assert jobs["train_decades"] == 3 * 2 * 10  # 100 seeds of 3 variants x 2 epochs


@pytest.mark.e2e
def test_one_study_runs_alone_by_its_name(tmp_path):
    (command,) = [c for c in commands() if c.endswith(" label_noise_quick")]
    for study in DEFAULT_STUDIES:
        assert f"`{study}`" in README[README.index("## Running one study") :]
    wd = copy_workflow(tmp_path)
    jobs = planned_jobs(snakemake(wd, "-n", *snakemake_args(command)).stdout)
    assert jobs and jobs["study_page"] == 1 and jobs["runs_table"] == 1


def _anchor(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def test_the_links_of_the_readme_and_docs_resolve():
    pages = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md")), REPO / "config/README.md"]
    for page in pages:
        text = page.read_text()
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if target.startswith(("http://", "https://")):
                continue
            path, _, anchor = target.partition("#")
            linked = (page.parent / path).resolve() if path else page
            assert linked.exists(), f"{page.name}: {target}"
            if anchor and linked.suffix == ".md":
                headings = re.findall(r"^#+ (.+)$", linked.read_text(), re.M)
                assert anchor in {_anchor(h) for h in headings}, f"{page.name}: {target}"
