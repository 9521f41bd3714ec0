"""profiles/slurm against a real SLURM: the one-node cluster that `.ci/slurm up` starts.

One run, started with the session (conftest's slurm_in_background: the rest of the suite goes
on while it waits for SLURM), submits a tiny label-noise study through profiles/slurm (with a CI
override: the local partition and account, no GPU, short status polls) into a copy of the
workflow whose training script has two faults injected, each firing once:

- seed 0's training job sleeps after every epoch's checkpoint, so SLURM kills it at its time limit
  (the study asks for 1 minute); the retry (2 minutes) must resume from the last checkpoint;
- seed 1's training job raises after its first epoch; the retry must complete it.

The evaluation jobs of both seeds are packed into one SLURM job (a Snakemake group). The same
study run locally, without faults, must give the same tables.

Off CI, these tests skip unless that cluster is up (`sudo .ci/slurm up`, Debian 12); under CI (the
CI environment variable set) a cluster that is not up fails them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import REPO, Background, copy_workflow, snakemake

pytestmark = [pytest.mark.slurm, pytest.mark.e2e]

CLUSTER, PARTITION, ACCOUNT = "corruptlab", "debug", "corruptlab"  # what .ci/slurm sets up
STUDY = {
    "kind": "label_noise",
    "dataset": "mnist5k",
    "models": ["perceptron"],
    "noise": [{"kind": "none"}],
    "optimizers": [{"name": "adadelta", "lr": [1.0]}],
    "max_epochs": 5,
    "patience": 5,
    "seeds": 2,
    "resources": {"gpus": 0, "mem_mb": 1000, "runtime": 1},
}
CONFIG = {"studies": {"onslurm": STUDY}}
TABLES = ["runs", "summary", "selection"]
# what legitimately differs between two runs of the same study: wall times, and where a resumed
# training job picked up
VARYING = {"train_seconds", "job_seconds", "resumed_from_epoch"}
SLURM_TIMEOUT = 1800  # seconds for the whole SLURM run from its start (about 3 minutes alone;
# it runs beside the rest of the suite)

FAULTS = """
# --- injected by tests/test_slurm.py: each fault fires once (a marker file remembers it) -------
import time
from pathlib import Path

import corruptlab.train.training as _training

_seed = snakemake.params.runs[0]["seed"]
_marker = Path(snakemake.output.model_0).with_name(f"fault-fired.{_seed}")
if not _marker.exists():
    _marker.touch()
    _save = _training.torch_save
    if _seed == 0:  # slow epochs: SLURM's time limit kills the job after a checkpoint or two

        def _slow_save(obj, path):
            _save(obj, path)
            time.sleep(25)

        _training.torch_save = _slow_save
    else:  # a crash after the first epoch's checkpoint

        def _crashing_save(obj, path):
            _save(obj, path)
            raise RuntimeError("injected fault: training crashes once")

        _training.torch_save = _crashing_save
# --- end of injected faults ----------------------------------------------------------------
"""


def cluster_state() -> str | None:
    """None if the CI cluster answers, else why not."""
    if shutil.which("sinfo") is None:
        return "sinfo is not installed"
    try:
        conf = subprocess.run(
            ["scontrol", "show", "config"], capture_output=True, text=True, timeout=20
        )
        nodes = subprocess.run(
            ["sinfo", "-h", "-p", PARTITION, "-o", "%T"], capture_output=True, text=True, timeout=20
        )
    except subprocess.TimeoutExpired:
        return "slurmctld does not answer (scontrol/sinfo timed out)"
    if conf.returncode != 0:
        return f"slurmctld does not answer: {conf.stderr.strip()[:200]}"
    name = re.search(r"^ClusterName\s*=\s*(\S+)", conf.stdout, re.M)
    if name is None or name.group(1) != CLUSTER:
        found = name.group(1) if name else "?"
        return f"this SLURM is cluster {found!r}, not the CI cluster {CLUSTER!r}"
    states = nodes.stdout.split()
    if not any(s.rstrip("*") in {"idle", "mixed", "allocated"} for s in states):
        return f"no usable node in partition {PARTITION!r} (states: {states})"
    return None


@pytest.fixture(scope="module")
def cluster():
    why = cluster_state()
    if why is None:
        return
    how = "start it with `sudo .ci/slurm up` (Debian 12; installs and starts a one-node SLURM)"
    if os.environ.get("CI"):
        pytest.fail(f"SLURM is not up under CI: {why}; .ci/run should have started it: {how}")
    pytest.skip(f"no CI SLURM cluster here ({why}); {how}")


def ci_profile(workdir: Path) -> Path:
    """profiles/slurm with the CI cluster's partition and account, and short status polls."""
    profile = yaml.safe_load((REPO / "profiles/slurm/config.yaml").read_text())
    profile["default-resources"].update(slurm_partition=PARTITION, slurm_account=ACCOUNT)
    profile["slurm-init-seconds-before-status-checks"] = 5
    profile["latency-wait"] = 5
    profile["jobs"] = 4
    out = workdir / "profiles" / "ci"
    out.mkdir(parents=True)
    (out / "config.yaml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return out


def _sacct(run_uuid: str) -> pd.DataFrame:
    """The SLURM jobs of one Snakemake run (job name = the run's uuid), as sacct records them."""
    out = subprocess.run(
        ["sacct", "-X", "-n", "-P", "--name", run_uuid, "-o", "JobID,State,Timelimit,ReqMem"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout
    rows = [line.split("|") for line in out.splitlines() if line.strip()]
    return pd.DataFrame(rows, columns=["job_id", "state", "time_limit", "req_mem"])


def start_on_slurm(remote: Path) -> Background:
    """Start the study through SLURM, with the faults, in a copy of the workflow in ``remote``
    (conftest's slurm_in_background does, as the session starts)."""
    copy_workflow(remote)
    (remote / "study.yaml").write_text(yaml.safe_dump(CONFIG))
    train = remote / "scripts" / "train.py"
    source = train.read_text()
    head, sep, body = source.partition("from corruptlab.jobs.train import RUN_FILES, train_job\n")
    assert sep, "scripts/train.py changed: put the fault injection after its imports"
    train.write_text(head + sep + FAULTS + body)
    profile = ci_profile(remote)
    return Background(
        remote,
        "--profile",
        str(profile),
        "--configfile",
        "study.yaml",
        "--groups",
        "evaluate=evalpack",
        "--group-components",
        "evalpack=2",
        timeout=SLURM_TIMEOUT,
    )


@pytest.fixture(scope="module")
def runs(cluster, slurm_in_background, tmp_path_factory):
    """The study run locally, and run through SLURM with the faults; their workdirs and logs."""
    assert slurm_in_background is not None, "the cluster is up, so the SLURM run has started"
    local = copy_workflow(tmp_path_factory.mktemp("local"))
    (local / "study.yaml").write_text(yaml.safe_dump(CONFIG))
    snakemake(local, "--configfile", "study.yaml")

    result = slurm_in_background.wait()
    log = result.stdout
    uuid = re.search(r"SLURM run ID: (\S+)", log)
    assert uuid, f"no SLURM run ID in the log:\n{log[-3000:]}"
    jobs = _sacct(uuid.group(1))
    remote = slurm_in_background.workdir
    return {"local": local, "remote": remote, "log": log, "rc": result.returncode, "jobs": jobs}


def _run_dir(workdir: Path, seed: int) -> Path:
    (found,) = (workdir / "results" / "onslurm" / "runs").rglob(f"seed{seed}")
    return found


def _attempts(runs: dict, rule: str, seed: int) -> pd.DataFrame:
    """sacct's rows for every SLURM job submitted for one Snakemake job, in submission order."""
    log = runs["log"]
    # the submission line names the job's SLURM log: .../rule_<rule>/<study>_..._<seed>/<id>.log
    ids = re.findall(
        rf"has been submitted with SLURM jobid (\d+) \(log: \S*/rule_{rule}/\S*_{seed}/\d+\.log\)",
        log,
    )
    jobs = runs["jobs"].set_index("job_id")
    return jobs.loc[ids].reset_index()


def test_the_study_completes_on_slurm_with_the_same_tables_as_locally(runs):
    log = runs["log"]
    assert runs["rc"] == 0, f"snakemake on SLURM failed:\n{log[-5000:]}"
    jobs = runs["jobs"]
    # prepare, 2 x labels, 2 x train and their 2 retries, 1 packed evaluation; the rest is local
    assert len(jobs) == 8 and set(jobs["state"]) <= {"COMPLETED", "FAILED", "TIMEOUT"}, jobs
    for name in TABLES:
        local = pd.read_parquet(runs["local"] / "results/onslurm/tables" / f"{name}.parquet")
        remote = pd.read_parquet(runs["remote"] / "results/onslurm/tables" / f"{name}.parquet")
        if "metric" in local:
            local = local[~local["metric"].isin(VARYING)].reset_index(drop=True)
            remote = remote[~remote["metric"].isin(VARYING)].reset_index(drop=True)
        cols = [c for c in local.columns if c not in VARYING]
        assert len(local) > 0 and list(remote.columns) == list(local.columns), name
        pd.testing.assert_frame_equal(remote[cols], local[cols], check_exact=True, obj=name)
    runs_table = pd.read_parquet(runs["remote"] / "results/onslurm/tables/runs.parquet")
    assert sorted(runs_table["seed"]) == [0, 1] and (runs_table["status"] == "ok").all()
    assert (runs_table["epochs_trained"] == STUDY["max_epochs"]).all()


def test_a_job_that_fails_once_completes_on_retry(runs):
    assert runs["rc"] == 0, runs["log"][-5000:]
    assert "injected fault: training crashes once" in runs["log"]
    attempts = _attempts(runs, "train", seed=1)
    assert attempts["state"].tolist() == ["FAILED", "COMPLETED"], attempts
    # the retry asks for twice the memory and time (mem_mb and runtime grow with the attempt)
    assert attempts["req_mem"].tolist() == ["1000M", "2000M"], attempts
    assert attempts["time_limit"].tolist() == ["00:01:00", "00:02:00"], attempts
    run = _run_dir(runs["remote"], 1)
    assert (run / "fault-fired.1").exists() and (run / "model.pt").exists()
    record = json.loads((run / "run.json").read_text())
    assert record["resumed_from_epoch"] == 1  # the crash came after epoch 1's checkpoint


def test_a_job_killed_at_its_time_limit_resumes_from_its_checkpoint(runs):
    assert runs["rc"] == 0, runs["log"][-5000:]
    attempts = _attempts(runs, "train", seed=0)
    assert attempts["state"].tolist() == ["TIMEOUT", "COMPLETED"], attempts
    assert attempts["time_limit"].tolist() == ["00:01:00", "00:02:00"], attempts
    run = _run_dir(runs["remote"], 0)
    record = json.loads((run / "run.json").read_text())
    assert 1 <= record["resumed_from_epoch"] < STUDY["max_epochs"], record
    assert "resumed from the checkpoint of epoch" in (run / "train.log").read_text()
    assert not (run / "checkpoint.pt").exists()  # removed once the run's outputs are written
    # the resumed run ends where an uninterrupted one does: same history, same weights
    local = _run_dir(runs["local"], 0)
    history = pd.read_parquet(run / "history.parquet").drop(columns="seconds")
    expected = pd.read_parquet(local / "history.parquet").drop(columns="seconds")
    pd.testing.assert_frame_equal(history, expected, check_exact=True)
    import torch  # heavy: only once a run exists

    mine = torch.load(run / "model.pt", map_location="cpu", weights_only=False)["state_dict"]
    theirs = torch.load(local / "model.pt", map_location="cpu", weights_only=False)["state_dict"]
    assert mine.keys() == theirs.keys()
    for name in mine:
        assert torch.equal(mine[name], theirs[name]), name


def test_evaluation_jobs_are_packed_into_one_slurm_job(runs):
    log = runs["log"]
    assert runs["rc"] == 0, log[-5000:]
    for seed in (0, 1):
        assert (_run_dir(runs["remote"], seed) / "eval.parquet").exists()
    # one sbatch for the group of both seeds' evaluation jobs; none for a single evaluation
    assert len(re.findall(r"Group job evalpack \(jobs in lexicogr\. order\):", log)) == 1
    packed = re.findall(r"has been submitted with SLURM jobid (\d+) \(log: \S*/group_evalpack", log)
    assert len(packed) == 1, log[-3000:]
    assert not re.search(r"submitted with SLURM jobid \d+ \(log: \S*/rule_evaluate/", log)
    assert runs["jobs"].set_index("job_id").loc[packed[0], "state"] == "COMPLETED"
