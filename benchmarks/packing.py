"""Packing: K seeds of one configuration trained in one job (train.seeds_per_job), one after
another or together (train.packing), against the same K seeds trained as K jobs.

Two measurements, on the bundled mnist5k digits (3,500 training images), 1 torch thread:

1. In one process: ``packing.train_packed`` on K seeds (stacked parameters, one vmapped
   forward/backward pass) against ``training.train`` called K times. Samples per second.
2. As jobs: K training jobs, each a fresh Python process running ``jobs.train.train_job`` for one
   seed (what Snakemake runs per run, minus Snakemake's own per-job work), against one process
   running ``jobs.train.train_job`` for all K, with packing sequential and vmap. Wall time;
   this includes what every job pays once: interpreter start, imports, data loading, writing
   outputs. Sequential packs must equal the runs alone; vmap's drift is reported.

Target (issue 6): K = 8 at least 3x the throughput of 8 sequential runs on mlp1.

    uv run python benchmarks/packing.py            # K = 8, mlp1 / perceptron / conv4: ~4 min
    uv run python benchmarks/packing.py --quick    # seconds (a smoke test)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import _common

TARGET = 3.0


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--k", type=int, default=8, help="seeds per pack (default 8)")
    p.add_argument("--models", default="mlp1,perceptron,conv4")
    p.add_argument("--epochs", type=int, default=8, help="epochs per run (the default study's)")
    p.add_argument("--alpha", type=int, default=0, help="uniform label noise: alpha noisy copies")
    p.add_argument("--quick", action="store_true", help="tiny sizes, one repeat (a smoke test)")
    return p.parse_args(argv)


def prepare_inputs(tmp: Path, k: int, alpha: int, study: str) -> tuple[Path, list[Path]]:
    """The prepared mnist5k file and K seeds' noisy labels, as the prepare and labels rules
    write them."""
    from corruptlab.data.datasets import prepare, save_prepared
    from corruptlab.jobs.labels import make_labels

    data = tmp / "data.pt"
    save_prepared(prepare("mnist5k", raw_dir=None, split_seed=0), data)
    spec = {"kind": "uniform", "alpha": alpha} if alpha else {"kind": "none"}
    labels = []
    for seed in range(k):
        path = tmp / f"labels{seed}.npz"
        make_labels(str(data), spec, study, seed, str(path))
        labels.append(path)
    return data, labels


def runs_for(model: str, k: int, epochs: int, alpha: int, study: str) -> list[dict]:
    from corruptlab.core.config import expand_runs, validate_config

    noise = {"kind": "uniform", "alpha": [alpha]} if alpha else {"kind": "none"}
    config = {
        "device": "cpu",
        "studies": {
            study: {
                "kind": "label_noise",
                "dataset": "mnist5k",
                "models": [model],
                "noise": [noise],
                "optimizers": [{"name": "adadelta", "lr": [1.0]}],
                "max_epochs": epochs,
                "patience": epochs,  # no early stopping: every run trains every epoch
                "seeds": k,
            }
        },
    }
    validate_config(config)
    return expand_runs(study, config["studies"][study], config)


def in_process(model: str, k: int, epochs: int, data_path: Path, labels, runs) -> tuple:
    """(sequential samples/s, packed samples/s) of the training loops alone."""
    import torch

    from corruptlab.jobs.train import _RunInputs
    from corruptlab.train.packing import train_packed
    from corruptlab.train.training import train

    torch.set_num_threads(1)
    shared: dict = {}
    jobs = [
        _RunInputs(run, str(data_path), str(lab), torch.device("cpu"), shared)
        for run, lab in zip(runs, labels, strict=True)
    ]
    samples = sum(job.n_train for job in jobs) * epochs
    t0 = time.perf_counter()
    for job in jobs:
        train(job.model(), job.data, job.cfg)
    sequential = time.perf_counter() - t0
    t0 = time.perf_counter()
    train_packed([job.model() for job in jobs], [j.data for j in jobs], [j.cfg for j in jobs])
    packed = time.perf_counter() - t0
    return samples / sequential, samples / packed


JOB = """
import json, sys
from corruptlab.jobs.train import train_job
args = json.loads(sys.argv[1])
train_job(args["runs"], args["data"], args["labels"], args["outs"], 1, packing=args["packing"])
"""


def as_jobs(tmp: Path, data_path: Path, labels, runs) -> tuple[float, float, float, float]:
    """Wall times of K one-run processes in a row, of one process training the K runs one after
    another (packing: sequential) and of one training them together (vmap); and the largest
    difference in best validation accuracy between a vmap run and its unpacked twin."""
    env = _common.workflow_env(_common.REPO)

    def outs(tag: str) -> list[dict]:
        result = []
        for run in runs:
            d = tmp / tag / f"seed{run['seed']}"
            d.mkdir(parents=True, exist_ok=True)
            result.append({k: str(d / f) for k, f in _FILES.items()})
        return result

    def job(selected, labels_, outs_, packing) -> float:
        args = {
            "runs": selected,
            "data": str(data_path),
            "labels": [str(lab) for lab in labels_],
            "outs": outs_,
            "packing": packing,
        }
        t0 = time.perf_counter()
        proc = subprocess.run(
            [sys.executable, "-c", JOB, json.dumps(args)], env=env, capture_output=True, text=True
        )
        if proc.returncode != 0:
            _common.fail(f"training job failed:\n{proc.stderr[-3000:]}")
        return time.perf_counter() - t0

    alone = outs("alone")
    one_by_one = sum(
        job([run], [lab], [out], None) for run, lab, out in zip(runs, labels, alone, strict=True)
    )
    sequential, vmap = outs("sequential"), outs("vmap")
    sequential_wall = job(runs, labels, sequential, "sequential")
    vmap_wall = job(runs, labels, vmap, "vmap")
    records = {
        tag: [json.loads(Path(o["run"]).read_text()) for o in out]
        for tag, out in (("alone", alone), ("sequential", sequential), ("vmap", vmap))
    }
    for a, p in zip(records["alone"], records["sequential"], strict=True):
        if (a["best_epoch"], a["best_val_accuracy"]) != (p["best_epoch"], p["best_val_accuracy"]):
            _common.fail(f"a sequential pack changed run {a['run']['run_id']}")
    drift = max(
        abs(a["best_val_accuracy"] - p["best_val_accuracy"])
        for a, p in zip(records["alone"], records["vmap"], strict=True)
    )
    return one_by_one, sequential_wall, vmap_wall, drift


_FILES = {"model": "model.pt", "history": "history.parquet", "run": "run.json"}


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.quick:
        args.k, args.epochs, args.models = 2, 1, "perceptron"
    models = args.models.split(",")
    _common.print_machine(
        f"packing: {args.k} seeds per job vs one job per seed",
        extra=[("torch threads used", "1"), ("epochs per run", str(args.epochs))],
    )
    loops, jobs = [], []
    with tempfile.TemporaryDirectory(prefix="corruptlab-packing-") as tmp_name:
        tmp = Path(tmp_name)
        study = "bench"
        data_path, labels = prepare_inputs(tmp, args.k, args.alpha, study)
        for model in models:
            runs = runs_for(model, args.k, args.epochs, args.alpha, study)
            seq, packed = in_process(model, args.k, args.epochs, data_path, labels, runs)
            loops.append((model, args.k, round(seq), round(packed), f"{packed / seq:.2f}x"))
            alone, sequential, vmap, drift = as_jobs(tmp / model, data_path, labels, runs)
            best = alone / min(sequential, vmap)
            mark = ("met" if best >= TARGET else "missed") if model == "mlp1" else ""
            jobs.append(
                (
                    model,
                    args.k,
                    f"{alone:.1f}",
                    f"{sequential:.1f} ({alone / sequential:.2f}x)",
                    f"{vmap:.1f} ({alone / vmap:.2f}x)",
                    f"{drift:.3f}",
                    mark,
                )
            )
    _common.print_table(
        ["model", "K", "one after another samples/s", "vmap samples/s", "vmap / one after another"],
        loops,
        title=f"1. training loops in one process (alpha = {args.alpha})",
    )
    _common.print_table(
        [
            "model",
            "K",
            f"{args.k} jobs in a row (s)",
            "1 job, sequential (s)",
            "1 job, vmap (s)",
            "vmap: largest Δ best val acc",
            "target 3x",
        ],
        jobs,
        title="2. whole training jobs (fresh process each: start-up, imports, data, outputs); "
        "sequential runs are checked to equal the runs alone",
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
