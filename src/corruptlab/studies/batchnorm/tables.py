"""The derived tables of the ``batchnorm`` kind (lr sweep, largest lr, the measurements at
initialisation), and the helpers the claims and the kind share (``twin_of``, ``pairs``,
``clean_runs``)."""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from corruptlab.report.claims import LEARNS_ABOVE
from corruptlab.report.stats import RANGES, mean_ci
from corruptlab.report.tables import CONFIG_COLUMNS, OPTIM_COLUMNS, ci_rows, provenance
from corruptlab.train.models import MODELS

PROBE = "probe."
COLUMN = re.compile(
    r"probe\.(?P<quantity>[a-z_]+)\.(?:L(?P<layer>\d+)(?:\.b(?P<batch>\d+))?|s(?P<step>.+))"
)


def twin_of(model: str) -> str | None:
    """The no-batch-norm twin a registered batch-norm model names (None otherwise)."""
    return MODELS.get(model).without_bn if model in MODELS else None


def pairs(models) -> list[tuple[str, str]]:
    """(with BN, without BN) pairs among ``models``, in the order of the first."""
    present = set(models)
    return [(m, twin_of(m)) for m in dict.fromkeys(models) if twin_of(m) in present]


def clean_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run (its clean test accuracy), with ``bn`` (the model has batch norm),
    ``pair`` (the no-BN model of its pair: itself without BN), ``diverged`` and
    ``trains`` (finite and accuracy > LEARNS_ABOVE)."""
    out = runs[runs["condition"] == "clean"].copy()
    out["bn"] = out["model"].map(lambda m: bool(MODELS.get(m).batchnorm) if m in MODELS else False)
    out["pair"] = out["model"].map(lambda m: twin_of(m) or m)
    out["diverged"] = out["status"] == "diverged"
    out["trains"] = ~out["diverged"] & (out["accuracy"] > LEARNS_ABOVE)
    if "init" not in out:
        out["init"] = "default"
    return out


SWEEP_KEYS = ["study", "dataset", "pair", "model", "bn", "init", "optimizer", "lr", "batch_size"]


def lr_sweep(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Per model, init and learning rate: the runs, how many diverged (non-finite loss) and how
    many trained (finite, accuracy > 0.5), and the clean test accuracy's mean and 95% CI over
    the seeds that did not diverge."""
    runs = clean_runs(tables["runs"])
    rows = []
    keys = [k for k in SWEEP_KEYS if k in runs]
    for key, g in runs.groupby(keys, sort=True, dropna=False):
        finite = g[~g["diverged"]]
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "n_runs": len(g),
                "n_diverged": int(g["diverged"].sum()),
                "n_trains": int(g["trains"].sum()),
                "first_diverged_epoch": (
                    float(g.loc[g["diverged"], "epochs_trained"].min())
                    if g["diverged"].any()
                    else math.nan
                ),
                **provenance(g),
                **mean_ci(finite["accuracy"].to_numpy(float), bounds=RANGES["accuracy"]),
            }
        )
    return pd.DataFrame(rows)


def _largest(lrs) -> float:
    lrs = list(lrs)
    return float(max(lrs)) if lrs else math.nan


def max_lr(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Per model and init: the largest learning rate of the grid at which no seed diverged
    (``max_lr_finite``), and at which every seed trained (finite and clean test accuracy
    > 0.5: ``max_lr_trains``); NaN where there is none. ``at_grid_top``: the value is the
    grid's largest lr (a lower bound of the model's own)."""
    sweep = tables["lr_sweep"]
    rows = []
    keys = [k for k in ("study", "dataset", "pair", "model", "bn", "init") if k in sweep]
    for key, g in sweep.groupby(keys, sort=True, dropna=False):
        top = float(g["lr"].max())
        finite = _largest(g.loc[g["n_diverged"] == 0, "lr"])
        trains = _largest(g.loc[g["n_trains"] == g["n_runs"], "lr"])
        rows.append(
            {
                **dict(zip(keys, key, strict=True)),
                "lr_min": float(g["lr"].min()),
                "lr_max": top,
                "max_lr_finite": finite,
                "max_lr_trains": trains,
                "at_grid_top": bool(trains == top),
                **provenance(g),
            }
        )
    return pd.DataFrame(rows)


def init_probe(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """The measurements at initialisation, one row per (model, init, seed, quantity, layer,
    minibatch or step size): the history's ``probe.*`` columns of epoch 0, long. A seed's
    initial weights and probe minibatches are the same at every learning rate, so each
    (model, init, seed, batch size and noise setting: the data it is measured on) is kept once,
    its run at the smallest lr."""
    h = tables["histories"]
    columns = [c for c in h if c.startswith(PROBE)]
    runs = clean_runs(tables["runs"])
    base = ["run_id", "model", "bn", "pair", "init", "seed", "batch_size", "lr"]
    out_columns = [*base, "quantity", "layer", "batch", "step_size", "value"]
    if not columns:
        return pd.DataFrame(columns=out_columns)
    same_data = [c for c in CONFIG_COLUMNS if c in runs and c not in OPTIM_COLUMNS]
    first = h[h["epoch"] == 0][["run_id", *columns]]
    first = first.merge(runs[["run_id", *same_data, "bn", "pair", "seed"]], on="run_id")
    first = first.merge(runs[["run_id", "lr"]], on="run_id")
    first = first.sort_values([*same_data, "seed", "lr"]).drop_duplicates([*same_data, "seed"])
    long = first.melt(id_vars=base, value_vars=columns, var_name="column").dropna(subset=["value"])
    parts = long["column"].str.extract(COLUMN)
    long["quantity"] = parts["quantity"]
    long["layer"] = pd.to_numeric(parts["layer"]).astype("Int64")
    long["batch"] = pd.to_numeric(parts["batch"]).astype("Int64")
    long["step_size"] = pd.to_numeric(parts["step"])
    long = long[out_columns].sort_values(
        ["model", "init", "seed", "quantity", "layer", "batch", "step_size"], ignore_index=True
    )
    prov = provenance(runs)
    return long.assign(**prov)


def _per_run(probe: pd.DataFrame) -> pd.DataFrame:
    """One value per (run, quantity, layer, step size): a quantity measured per minibatch
    (gradient norms) is averaged over its minibatches."""
    keys = ["run_id", "model", "bn", "pair", "init", "seed", "batch_size"]
    keys += ["quantity", "layer", "step_size"]
    return probe.groupby(keys, dropna=False, sort=True, as_index=False)["value"].mean()


def init_probe_summary(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Per model, init, quantity and layer (or step size): the mean and 95% CI over seeds of
    log10 of the run's value (``scale`` log10; gradient norms: the run's mean over its
    minibatches first), the values clipped to [1e-12, 1e12] (a non-finite loss after a step
    counts as 1e12): these quantities vary by orders of magnitude between layers and models."""
    probe = tables["init_probe"]
    if probe.empty:
        return pd.DataFrame(
            columns=["model", "bn", "pair", "init", "quantity", "layer", "step_size", "mean"]
        )
    per_run = _per_run(probe)
    per_run["value"] = np.log10(np.clip(per_run["value"].to_numpy(float), 1e-12, 1e12))
    per_run["scale"] = "log10"
    keys = ["model", "bn", "pair", "init", "batch_size", "quantity", "scale", "layer", "step_size"]
    rows = ci_rows(per_run.assign(**provenance(probe)), keys, "value", {}, metric="value")
    return pd.DataFrame(rows)
