"""Job-level functions: a training job killed with SIGKILL and run again resumes from its
checkpoint and ends with exactly the result of an uninterrupted run."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from corruptlab.core.config import expand_runs, validate_config
from corruptlab.data.datasets import prepare, save_prepared
from corruptlab.data.noise import load_noisy_labels
from corruptlab.jobs.evaluate import evaluate_job
from corruptlab.jobs.labels import make_labels

JOB = """
import json, sys
from corruptlab.jobs.train import train_job
args = json.loads(sys.argv[1])
train_job([args["run"]], args["data"], [args["labels"]], [args["out"]], threads=1)
"""


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipeline")
    data = root / "data.pt"
    save_prepared(prepare("mnist5k", split_seed=0), data)
    config = validate_config(
        {
            "studies": {
                "s": {
                    "kind": "label_noise",
                    "dataset": "mnist5k",
                    "models": ["mlp1"],
                    "noise": [{"kind": "uniform", "alpha": 6}],
                    "optimizers": [{"name": "sgd", "lr": 0.05, "momentum": 0.9}],
                    "max_epochs": 5,
                    "patience": 5,
                    "seeds": 1,
                }
            }
        }
    )
    run = expand_runs("s", config["studies"]["s"], config)[0]
    labels = root / "labels.npz"
    make_labels(str(data), run["noise"], "s", 0, str(labels))
    return root, data, labels, run


def start(setup, name):
    root, data, labels, run = setup
    out_dir = root / name
    out = {
        k: str(out_dir / f)
        for k, f in [("model", "model.pt"), ("history", "history.parquet"), ("run", "run.json")]
    }
    args = json.dumps({"run": run, "data": str(data), "labels": str(labels), "out": out})
    return subprocess.Popen([sys.executable, "-c", JOB, args]), out_dir


def test_labels_file_is_deterministic(setup):
    root, data, labels, run = setup
    again = root / "again.npz"
    make_labels(str(data), run["noise"], "s", 0, str(again))
    a, b = load_noisy_labels(labels), load_noisy_labels(again)
    assert np.array_equal(a.labels, b.labels) and len(a.indices) == 7 * 3500


def test_killed_training_job_resumes_to_the_uninterrupted_result(setup):
    proc, full_dir = start(setup, "full")
    assert proc.wait(timeout=300) == 0

    proc, killed_dir = start(setup, "killed")
    checkpoint = killed_dir / "checkpoint.pt"
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline and proc.poll() is None:
        if checkpoint.exists() and torch.load(checkpoint, weights_only=True)["epoch"] >= 2:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the job finished before it could be killed"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert not (killed_dir / "run.json").exists()  # nothing half-written
    epoch_at_kill = torch.load(checkpoint, weights_only=True)["epoch"]
    assert 2 <= epoch_at_kill < 5

    proc, _ = start(setup, "killed")
    assert proc.wait(timeout=300) == 0
    full = json.loads((full_dir / "run.json").read_text())
    resumed = json.loads((killed_dir / "run.json").read_text())
    assert resumed["resumed_from_epoch"] == epoch_at_kill
    for key in ("status", "best_epoch", "best_val_accuracy", "epochs_trained"):
        assert resumed[key] == full[key], key
    cols = ["epoch", "train_loss", "val_loss", "val_accuracy"]
    pd.testing.assert_frame_equal(
        pd.read_parquet(killed_dir / "history.parquet")[cols],
        pd.read_parquet(full_dir / "history.parquet")[cols],
    )
    a = torch.load(full_dir / "model.pt", weights_only=True)["state_dict"]
    b = torch.load(killed_dir / "model.pt", weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not checkpoint.exists()

    rows, columns = evaluate_job(
        str(full_dir / "run.json"),
        str(setup[1]),
        str(full_dir / "model.pt"),
        [{"name": "clean", "severity": 0}],
    )
    assert [r["condition"] for r in rows] == ["clean"] and rows[0]["n"] == 1000
    assert rows[0]["accuracy"] == pytest.approx(np.mean(columns["correct"]))
    assert rows[0]["accuracy"] > 0.5  # 6 random labels per clean one; chance is 0.1


def test_randx_trains_on_appended_noise_images(setup, tmp_path):
    """randX replaces a fraction of inputs by N(0, 1) images (after normalisation) drawn in the
    training job; the labels file holds only indices, and a rerun draws the same images."""
    from corruptlab.data.noise import make_noisy_labels

    root, data, labels, run = setup
    spec = {"kind": "randx", "p": 0.5}
    noisy = make_noisy_labels(np.arange(10) % 3, 3, spec, seed=1)
    assert noisy.n_synthetic == 5 and sorted(noisy.indices[noisy.noisy]) == [10, 11, 12, 13, 14]
    assert np.array_equal(noisy.labels, np.arange(10) % 3)

    run = {**run, "noise": spec, "noise_slug": "randx-p0.5", "max_epochs": 1}
    randx_labels = tmp_path / "randx.npz"
    make_labels(str(data), spec, "s", 0, str(randx_labels))
    assert load_noisy_labels(randx_labels).n_synthetic == 1750
    from corruptlab.jobs.train import train_job

    records = []
    for name in ("a", "b"):
        out = {
            k: str(tmp_path / name / f)
            for k, f in [("model", "model.pt"), ("history", "h.parquet"), ("run", "run.json")]
        }
        records += train_job([run], str(data), [str(randx_labels)], [out])
    assert records[0]["n_train_examples"] == 3500
    assert records[0]["best_val_accuracy"] == records[1]["best_val_accuracy"]


def test_a_sequential_pack_equals_its_runs_alone_and_keeps_finished_runs_on_a_crash(
    setup, tmp_path, monkeypatch
):
    """train.packing: sequential trains a pack's seeds one after another in one process: each
    run bit for bit as its own job would, and after a crash in the second run the rerun takes
    the first from its finished checkpoint instead of training it again."""
    import corruptlab.train.training as training
    from corruptlab.jobs.train import RUN_FILES, train_job

    _, data, _, _ = setup
    study = {
        "kind": "label_noise",
        "dataset": "mnist5k",
        "models": ["mlp1"],
        "noise": [{"kind": "uniform", "alpha": 1}],
        "optimizers": [{"name": "adadelta", "lr": 1.0}],
        "max_epochs": 3,
        "patience": 3,
        "seeds": 2,
        "train": {"seeds_per_job": 2},
    }
    config = validate_config({"studies": {"p": study}})
    assert config["studies"]["p"]["train"]["packing"] == "sequential"  # the default
    runs = expand_runs("p", config["studies"]["p"], config)
    labels = []
    for run in runs:
        labels.append(str(tmp_path / f"labels{run['seed']}.npz"))
        make_labels(str(data), run["noise"], "p", run["seed"], labels[-1])
    names = dict(zip(RUN_FILES, ("model.pt", "history.parquet", "run.json"), strict=True))

    def outs(name):
        return [
            {k: str(tmp_path / name / f"seed{run['seed']}" / f) for k, f in names.items()}
            for run in runs
        ]

    alone = [  # each a pack of one
        train_job([run], str(data), [lab], [out])[0]
        for run, lab, out in zip(runs, labels, outs("alone"), strict=True)
    ]
    assert not any("packed_with" in a or "packing" in a for a in alone)
    real_train, calls = training.train, []

    def crash_in_second_run(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("injected crash")
        return real_train(*args, **kwargs)

    monkeypatch.setattr(training, "train", crash_in_second_run)
    with pytest.raises(RuntimeError, match="injected crash"):
        train_job(runs, str(data), labels, outs("pack"), packing="sequential")
    first_checkpoint = tmp_path / "pack/seed0/checkpoint.pt"
    assert torch.load(first_checkpoint, weights_only=True)["stopped_by"] == "max_epochs"
    assert not any((tmp_path / "pack" / f"seed{s}/run.json").exists() for s in (0, 1))

    monkeypatch.setattr(training, "train", real_train)
    packed = train_job(runs, str(data), labels, outs("pack"), packing="sequential")
    assert [r["resumed_from_epoch"] for r in packed] == [3, 0]  # the first was not retrained
    assert all(r["packed_with"] == [0, 1] and r["packing"] == "sequential" for r in packed)
    assert not list((tmp_path / "pack").rglob("*checkpoint*"))
    for a, p, out_a, out_p in zip(alone, packed, outs("alone"), outs("pack"), strict=True):
        for key in ("status", "best_epoch", "best_val_accuracy", "epochs_trained"):
            assert p[key] == a[key], key
        cols = ["epoch", "train_loss", "val_loss", "val_accuracy"]
        pd.testing.assert_frame_equal(
            pd.read_parquet(out_p["history"])[cols], pd.read_parquet(out_a["history"])[cols]
        )
        wa = torch.load(out_a["model"], weights_only=True)["state_dict"]
        wp = torch.load(out_p["model"], weights_only=True)["state_dict"]
        assert all(torch.equal(wa[k], wp[k]) for k in wa)
    w0, w1 = (torch.load(o["model"], weights_only=True)["state_dict"] for o in outs("pack"))
    assert not torch.equal(w0["1.weight"], w1["1.weight"])  # two different runs
