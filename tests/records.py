"""Hand-made run.json records and runs-table rows for the table, claim and figure tests.

A plain helper module (not a test file): the tests import it as ``from records import ...``.
"""

from __future__ import annotations

import pandas as pd

from corruptlab import studies
from corruptlab.report.tables import flatten_run

studies.load()


def output(kind: str, name: str):
    """The function that computes table or figure ``name`` of study kind ``kind``."""
    return studies.STUDIES.get(kind).output(name).fn


# provenance every record carries besides its git commit (and python version and hostname)
PROVENANCE = {"corruptlab_version": "0.1.0", "torch_version": "2.9.0", "device": "cpu"}
NOISE_CODES = {"alpha": "a", "delta": "d", "p": "p"}


def make_noise(alpha: float = 0, delta: float | None = None) -> dict:
    """Clean labels at alpha 0, else uniform noise, or structured noise when delta is given."""
    if alpha == 0:
        return {"kind": "none"}
    if delta is None:
        return {"kind": "uniform", "alpha": alpha}
    return {"kind": "structured", "alpha": alpha, "delta": delta}


def noise_slug(noise: dict) -> str:
    codes = (f"{NOISE_CODES[k]}{v:g}" for k, v in noise.items() if k != "kind")
    return "-".join([noise["kind"], *codes])


def make_record(
    model: str,
    noise: dict,
    lr: float,
    seed: int,
    *,
    best_val: float = 0.5,
    status: str = "ok",
    commit: str = "c0ffee",
    study: str = "ln_test",
    dataset: str = "mnist5k",
    best_epoch: int = 3,
    train_seconds: float = 1.0,
) -> dict:
    """A run.json record shaped like the one jobs.train.train_job writes."""
    slug = noise_slug(noise)
    optim_slug = f"adadelta-lr{lr:g}-wd0-bs128"
    run = {
        "study": study,
        "kind": "label_noise",
        "dataset": dataset,
        "split_seed": 0,
        "model": model,
        "noise": dict(noise),
        "noise_slug": slug,
        "optimizer": {"name": "adadelta", "lr": lr, "weight_decay": 0.0},
        "optim_slug": optim_slug,
        "batch_size": 128,
        "max_epochs": 10,
        "patience": 3,
        "seed": seed,
        "device": "auto",
        "run_id": f"{model}/{slug}/{optim_slug}/seed{seed}",
    }
    return {
        "run": run,
        "status": status,
        "stopped_by": "nonfinite_loss" if status == "diverged" else "patience",
        "best_epoch": best_epoch,
        "best_val_accuracy": best_val,
        "epochs_trained": best_epoch + 3,
        "n_train_examples": 1000,
        "train_seconds": train_seconds,
        "job_seconds": train_seconds + 2.0,
        "resumed_from_epoch": 0,
        "dataset_hash": "d" * 64,
        "provenance": {
            "corruptlab_version": PROVENANCE["corruptlab_version"],
            "git_commit": commit,
            "torch_version": PROVENANCE["torch_version"],
            "python_version": "3.11.7",
            "hostname": "testhost",
            "device": PROVENANCE["device"],
        },
    }


def eval_row(
    run_id: str,
    accuracy: float,
    condition: str = "clean",
    *,
    nll: float | None = None,
    entropy: float = 0.5,
    ece: float | None = None,
) -> dict:
    """One evaluation row; nll and ece default to values that grow as accuracy falls."""
    return {
        "run_id": run_id,
        "condition": condition,
        "n": 1000,
        "accuracy": accuracy,
        "nll": 1.0 - accuracy if nll is None else nll,
        "entropy": entropy,
        "ece": 0.25 * (1.0 - accuracy) if ece is None else ece,
    }


def runs_row(record: dict, accuracy: float, condition: str = "clean", **metrics) -> dict:
    """One row of the runs table: ``record`` flattened and joined with one evaluation row."""
    return {
        **flatten_run(record),
        **eval_row(record["run"]["run_id"], accuracy, condition, **metrics),
    }


def selection_table(runs: pd.DataFrame) -> pd.DataFrame:
    """The selection table computed, as the workflow does, from the summary of ``runs``."""
    tables = {"runs": runs}
    tables["summary"] = output("label_noise", "summary")(tables, {})
    return output("label_noise", "selection")(tables, {})
