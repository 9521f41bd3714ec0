"""A newcomer's slips on the command line (issue 15): each gives one clear message and a
non-zero exit status, with no Snakemake traceback pointing into the workflow's internals."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from conftest import copy_workflow, planned_jobs, snakemake

pytestmark = pytest.mark.e2e

STUDY = """\
studies:
  tiny:
    kind: label_noise
    dataset: mnist5k
    models: [mlp1]
    noise: [{kind: none}]
    optimizers: [{name: adam, lr: LR, weight_decay: WD}]
    max_epochs: 2
    seeds: 1
"""
INTERNALS = ("Traceback", "WorkflowError", "common.smk", 'Snakefile", line', "site-packages")


def messages(out: str) -> list[str]:
    """The output without Snakemake's note on the profiles it read."""
    return [line for line in out.splitlines() if line and not line.startswith("Using ")]


@pytest.fixture(scope="module")
def wd(tmp_path_factory) -> Path:
    return copy_workflow(tmp_path_factory.mktemp("errors"))


@pytest.mark.parametrize("dry", [True, False], ids=["dry-run", "run"])
def test_a_bad_config_prints_its_files_and_problems_and_nothing_else(wd, dry):
    bad = STUDY.replace("    dataset: mnist5k\n", "").replace("seeds: 1", "patience: [2, 3]")
    (wd / "bad.yaml").write_text(bad.replace("LR", "1e-3").replace("WD", "0"))
    result = snakemake(wd, *(["-n"] if dry else []), "--configfile", "bad.yaml", check=False)
    assert result.returncode == 1
    assert messages(result.stdout) == [
        "config file: bad.yaml",
        "invalid config (see config/README.md):",
        "  - studies.tiny.dataset: missing; accepted: one of mnist5k, mnist, fashion-mnist, "
        "kmnist, cifar10 (dataset name (registry corruptlab.data.datasets.DATASETS))",
        "  - studies.tiny.patience: got [2, 3]; accepted: an integer >= 1 (early stopping: "
        "epochs without a better clean validation accuracy; default min(5, max_epochs) of each "
        "run)",
    ]
    assert not any(word in result.stdout for word in INTERNALS)
    assert not (wd / "results").exists() and not (wd / "resources").exists()


def test_the_default_config_file_is_named_when_it_is_the_one_at_fault(wd):
    result = snakemake(wd, "-n", "--config", "threads=0", check=False)
    assert result.returncode == 1
    lines = messages(result.stdout)
    # Snakemake's own note first ("Config file config/config.yaml is extended by ...")
    assert lines[0].startswith("Config file config/config.yaml is extended")
    assert lines[1:4] == [
        "config file: config/config.yaml; --config overrides: threads",
        "invalid config (see config/README.md):",
        "  - threads: got 0; accepted: an integer >= 1 (CPU threads per training or evaluation "
        "job (the rules' threads:))",
    ]


def test_exponent_notation_plans_the_same_runs_as_decimals(wd):
    (wd / "exp.yaml").write_text(STUDY.replace("LR", "1e-3").replace("WD", "5E-4"))
    (wd / "dec.yaml").write_text(STUDY.replace("LR", "0.001").replace("WD", "0.0005"))
    assert yaml.safe_load((wd / "exp.yaml").read_text())["studies"]["tiny"]["optimizers"] == [
        {"name": "adam", "lr": "1e-3", "weight_decay": "5E-4"}  # strings to YAML 1.1
    ]
    exp = snakemake(wd, "-n", "--configfile", "exp.yaml").stdout
    dec = snakemake(wd, "-n", "--configfile", "dec.yaml").stdout
    planned = sorted(set(re.findall(r"results/tiny/[^\s,;]+", exp)))
    assert "results/tiny/runs/mlp1/none/adam-lr0.001-wd0.0005-bs128/seed0/model.pt" in planned
    assert planned == sorted(set(re.findall(r"results/tiny/[^\s,;]+", dec)))
    assert planned_jobs(exp) == planned_jobs(dec) and planned_jobs(exp)["train"] == 1


def test_cores_0_stops_before_planning_and_a_dry_run_with_it_plans(wd):
    (wd / "ok.yaml").write_text(STUDY.replace("LR", "0.001").replace("WD", "0"))
    # the helper passes --cores 2 first; the last --cores wins
    result = snakemake(wd, "--configfile", "ok.yaml", "--cores", "0", check=False, timeout=120)
    assert result.returncode == 1
    assert messages(result.stdout) == [
        "--cores 0: no job can run with 0 cores (Snakemake would plan the jobs and wait "
        "forever); use --cores all, or --cores N with N >= 1 (a dry run, -n, accepts any value)"
    ]
    assert not (wd / "results").exists()
    dry = snakemake(wd, "-n", "--configfile", "ok.yaml", "--cores", "0", timeout=120)
    assert planned_jobs(dry.stdout)["train"] == 1


@pytest.fixture
def no_slurm(tmp_path, monkeypatch):
    """scontrol and sbatch that fail at once, first on PATH: the SLURM plugin's start-up probe
    costs nothing, and nothing reaches a real cluster even if the check under test failed."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("scontrol", "sbatch", "sinfo", "squeue", "sacct"):
        stub = bin_dir / tool
        stub.write_text("#!/bin/sh\necho stubbed >&2\nexit 1\n")
        stub.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}:{__import__('os').environ['PATH']}")
    return bin_dir


EDIT = [
    "  - slurm_partition: CHANGE_ME; set it to your cluster's partition; `sinfo -s` lists them",
    "  - slurm_account: CHANGE_ME; set it to your account; `sacctmgr show assoc user=$USER` "
    "lists yours",
]
WHERE = (
    "slurm_partition, slurm_account still read CHANGE_ME in the profile's default-resources "
    "(profiles/slurm/config.yaml, the lines marked EDIT) or --default-resources"
)


def test_the_unedited_slurm_profile_warns_in_a_dry_run(wd, no_slurm):
    (wd / "ok.yaml").write_text(STUDY.replace("LR", "0.001").replace("WD", "0"))
    result = snakemake(wd, "--profile", "profiles/slurm", "-n", "--configfile", "ok.yaml")
    lines = messages(result.stdout)
    assert lines[:3] == [
        f"warning: {WHERE}; this dry run goes on, but a real run will refuse to submit any job "
        "until you edit:",
        *EDIT,
    ]
    assert planned_jobs(result.stdout)["train"] == 1


def test_the_unedited_slurm_profile_refuses_to_submit(wd, no_slurm):
    (wd / "ok.yaml").write_text(STUDY.replace("LR", "0.001").replace("WD", "0"))
    result = snakemake(
        wd, "--profile", "profiles/slurm", "--configfile", "ok.yaml", check=False, timeout=180
    )
    assert result.returncode == 1
    assert messages(result.stdout) == [
        f"not submitting: {WHERE}; no job was started. Edit:",
        *EDIT,
    ]
    assert "stubbed" not in result.stdout and "Building DAG" not in result.stdout
    assert not (wd / "results").exists() and not (wd / ".snakemake" / "slurm_logs").exists()


def test_an_edited_slurm_profile_is_not_refused(wd, no_slurm):
    (wd / "ok.yaml").write_text(STUDY.replace("LR", "0.001").replace("WD", "0"))
    result = snakemake(
        wd,
        *("--profile", "profiles/slurm", "-n", "--configfile", "ok.yaml"),
        *("--default-resources", "slurm_partition=gpu", "slurm_account=lab", "mem_mb=2000"),
    )
    assert "CHANGE_ME" not in result.stdout and "warning" not in result.stdout
    assert planned_jobs(result.stdout)["train"] == 1


@pytest.mark.parametrize(
    ("raw", "found"),
    [
        ({"slurm_partition": "CHANGE_ME", "slurm_account": "lab"}, ["slurm_partition"]),
        ({"slurm_account": '"CHANGE_ME"', "mem_mb": 2000}, ["slurm_account"]),
        ({"slurm_partition": "gpu", "slurm_account": "lab", "tmpdir": "system_tmpdir"}, []),
    ],
)
def test_placeholders_are_found_from_the_raw_default_resources(raw, found):
    from corruptlab.core.stop import placeholders

    assert placeholders(raw) == found


# ------------------------------------------------- a --configfile Snakemake cannot read


def test_a_yaml_syntax_error_names_the_file_line_and_column(wd):
    (wd / "tab.yaml").write_text("studies:\n  tiny:\n    kind: label_noise\n\tdataset: mnist5k\n")
    result = snakemake(wd, "-n", "--configfile", "tab.yaml", check=False, timeout=120)
    assert result.returncode == 1
    assert messages(result.stdout) == [
        "config file tab.yaml, line 4, column 1: not valid YAML: while scanning for the next "
        "token; found character '\\t' that cannot start any token",
        "  \tdataset: mnist5k",
        "  ^",
        "YAML indents with spaces only: replace the tab(s) at the start of the line with spaces",
    ]
    assert not any(word in result.stdout for word in INTERNALS)


def test_an_unclosed_bracket_names_where_it_was_opened(wd):
    (wd / "open.yaml").write_text("studies:\n  tiny: [a, b\n")
    result = snakemake(wd, "--configfile", "open.yaml", check=False, timeout=120)
    assert result.returncode == 1
    assert messages(result.stdout) == [
        "config file open.yaml, line 3, column 1: not valid YAML: while parsing a flow sequence "
        "(opened at line 2, column 9); expected ',' or ']', but got '<stream end>'",
        "    tiny: [a, b",
        "          ^",
        "check the indentation, and the brackets and quotes around this point",
    ]


def test_a_missing_config_file_is_one_line_not_a_traceback(wd):
    result = snakemake(wd, "--configfile", "nope.yaml", check=False, timeout=120)
    assert result.returncode == 1
    assert messages(result.stdout) == [
        f"config file nope.yaml not found (looked in {wd}); give --configfile the path of an "
        "existing YAML file, e.g. config/config.yaml or config/studies/label_noise.yaml"
    ]
    assert not any(word in result.stdout for word in INTERNALS)


def test_the_config_file_reader_is_wrapped_once_and_leaves_good_files_to_snakemake(tmp_path):
    from snakemake.common import configfile

    import snakemake_logger_plugin_corruptlab  # noqa: F401 (installs the wrapper)
    from corruptlab.core.configfile import install

    wrapped = configfile._load_configfile
    install()
    assert configfile._load_configfile is wrapped and wrapped.corruptlab
    good = tmp_path / "good.yaml"
    good.write_text("studies: {a: {lr: 1.0e-3}}\n")
    assert configfile.load_configfile(good) == {"studies": {"a": {"lr": 0.001}}}
