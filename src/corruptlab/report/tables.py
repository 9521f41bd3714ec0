"""Tidy tables, the generic part: the per-run tables (``runs``: one row per (run, condition)
with every config field, the run's outcome and its provenance as columns; ``predictions``,
``histories``), ``summary`` (mean and 95% CI over seeds per configuration, condition and
metric), and the helpers the study kinds' own tables use (``groups``, ``ci_rows``,
``provenance``, ``config_subjects``). Derived tables carry provenance too.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from corruptlab.core.io import read_json
from corruptlab.data.noise import NOISE, variant_of
from corruptlab.eval.metrics import METRICS
from corruptlab.report.stats import bounds_of, mean_ci
from corruptlab.train.objectives import OBJECTIVES
from corruptlab.train.optim import OPTIMIZERS
from corruptlab.train.schedules import SCHEDULES

NOISE_PARAMS = list(dict.fromkeys(p.name for k in NOISE.items() for p in k[1].params))
OPTIM_PARAMS = list(dict.fromkeys(p.name for k in OPTIMIZERS.items() for p in k[1].params))
# lr_schedule and objective (their slugs) are columns only of studies whose runs have a
# non-constant schedule or a non-default objective (elsewhere: NaN), so that other studies'
# tables keep their columns
OPTIM_COLUMNS = ["optimizer", *OPTIM_PARAMS, "lr_schedule"]
# a run's training method (corruptlab.train.methods): columns only of studies whose runs name
# one (no_gd), so that other studies' tables keep their columns; its parameters are columns
# train_method_<param> beside them
TRAIN_METHOD_COLUMNS = ["train_method", "train_method_id"]
CONFIG_COLUMNS = [
    "study",
    "kind",
    "dataset",
    "split_seed",
    "model",
    "init",
    "noise_kind",
    *NOISE_PARAMS,
    *OPTIM_COLUMNS,
    "objective",
    *TRAIN_METHOD_COLUMNS,
    "batch_size",
    "max_epochs",
    "patience",
    "in_classes",
]
# what identifies one evaluation of a run: test condition, severity, adaptation method and its
# parameters (eval.parquet)
EVAL_KEYS = [
    "condition",
    "severity",
    "method",
    "method_id",
    "method_order",
    "tta_lr",
    "tta_batch_size",
    "tta_steps",
    "tta_stream",
]
PROVENANCE_COLUMNS = ["corruptlab_version", "git_commit", "torch_version", "device"]
OUTCOME_METRICS = ["best_val_accuracy", "best_epoch", "epochs_trained", "train_seconds"]


def flatten_run(record: dict) -> dict:
    """One flat row from a run.json record: config fields, outcome and provenance."""
    run = record["run"]
    row = {k: run[k] for k in ("study", "kind", "dataset", "split_seed", "model")}
    if "init" in run:  # a named initialisation (the batchnorm study's; others keep their columns)
        row["init"] = run["init"]
    row["noise_kind"] = run["noise"]["kind"]
    row.update({p: run["noise"].get(p, np.nan) for p in NOISE_PARAMS})
    row["optimizer"] = run["optimizer"]["name"]
    row.update({p: run["optimizer"].get(p, np.nan) for p in OPTIM_PARAMS})
    if "schedule" in run["optimizer"]:
        schedule = run["optimizer"]["schedule"]
        row["lr_schedule"] = SCHEDULES.get(schedule["name"]).slug(schedule)
    if "objective" in run:
        row["objective"] = OBJECTIVES.get(run["objective"]["name"]).slug(run["objective"])
    if "train_method" in run:  # its parameters are in the run dict, its slug beside them
        spec = run["train_method"]
        row["train_method"] = spec["name"]
        row["train_method_id"] = run.get("train_method_id", spec["name"])
        row.update({f"train_method_{k}": v for k, v in spec.items() if k != "name"})
    row.update({k: run[k] for k in ("batch_size", "max_epochs", "patience", "seed", "run_id")})
    classes = run.get("in_classes")
    row["in_classes"] = "all" if classes is None else ",".join(map(str, classes))
    # a kind's own columns (distillation: role, transfer set, teacher run id, T, alpha)
    row.update(run.get("columns", {}))
    if run.get("inputs"):  # the other runs' files this run consumed (its provenance)
        row["inputs"] = ";".join(f"{k}={v}" for k, v in sorted(run["inputs"].items()))
    row.update(
        {
            k: record[k]
            for k in (
                "status",
                "stopped_by",
                "best_epoch",
                "best_val_accuracy",
                "epochs_trained",
                "n_train_examples",
                "train_seconds",
                "job_seconds",
                "resumed_from_epoch",
                "dataset_hash",
            )
        }
    )
    # how the run was trained: alone, or in a job with other seeds (vmap: float rounding differs)
    row["packing"] = record.get("packing", "vmap" if record.get("packed_with") else "none")
    row.update(record["provenance"])
    return row


def runs_table(
    run_jsons: Sequence[str], evals: Sequence[str], keys: Sequence[str] = EVAL_KEYS
) -> pd.DataFrame:
    """Join every run's record with its per-run rows (eval.parquet: one row per condition and
    method; ood.parquet: per OOD set and score), sorted by run and ``keys``."""
    runs = pd.DataFrame([flatten_run(read_json(p)) for p in run_jsons])
    ev = pd.concat([pd.read_parquet(p) for p in evals], ignore_index=True)
    missing = set(runs["run_id"]) - set(ev["run_id"])
    if missing:
        raise ValueError(f"runs without evaluation rows: {sorted(missing)[:5]}")
    table = runs.merge(ev, on="run_id", how="inner", validate="one_to_many")
    keys = ["run_id", *(k for k in keys if k in table)]
    return table.sort_values(keys, ignore_index=True)


def provenance(group: pd.DataFrame) -> dict:
    """The provenance columns of a group of rows, each the ';'-joined distinct values."""
    return {
        c: ";".join(sorted(map(str, group[c].dropna().unique())))
        for c in PROVENANCE_COLUMNS
        if c in group
    }


def groups(frame: pd.DataFrame, keys: list[str]):
    """(the keys present in ``frame``, its groupby over them, NaN keys kept, sorted)."""
    keys = [k for k in keys if k in frame]
    return keys, frame.groupby(keys, dropna=False, sort=True)


def summary(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Per configuration and condition, each metric's mean, std, n and 95% CI over seeds."""
    runs = tables["runs"]
    metrics = [m for m in [*METRICS.names(), *OUTCOME_METRICS] if m in runs]
    keys, grouped = groups(runs, [*CONFIG_COLUMNS, *EVAL_KEYS])
    rows = []
    for key, group in grouped:
        base = dict(zip(keys, key, strict=True))
        base["n_diverged"] = int((group["status"] == "diverged").sum())
        base.update(provenance(group))
        for metric in metrics:
            values = group[metric].to_numpy(float)
            rows.append({**base, "metric": metric, **mean_ci(values, bounds=bounds_of(metric))})
    return pd.DataFrame(rows)


def number(x: float) -> str:
    """A float as the terminal shows it: four decimals, or scientific notation where four
    decimals would print a nonzero value as 0.0000 (a p-value of 1.7e-36)."""
    if x != 0 and abs(x) < 5e-5:
        return f"{x:.2e}"
    return f"{x:.4f}"


def show(table: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A compact text rendering (for logs and the terminal). A claims table shows each paper
    number beside its source, where any row has one."""
    if columns is None:
        columns = [
            c
            for c in ("verdict", "claim", "subject", "value", "ci95_low", "ci95_high")
            if c in table
        ]
        if "paper_value" in table and table["paper_value"].notna().any():
            columns += [c for c in ("paper_value", "paper_source") if c in table]
    with pd.option_context(
        "display.width",
        160,
        "display.max_colwidth",
        60,
        "display.max_rows",
        200,
        "display.float_format",
        number,
    ):
        return table[list(columns)].to_string(index=False)


def ci_rows(
    frame: pd.DataFrame, keys: list[str], value: str, extra: dict, metric: str | None = None
) -> list[dict]:
    """Per group of ``keys``: the keys, ``extra``, provenance and the mean and 95% CI of
    ``value`` over the group's rows (seeds), clipped to the range of ``metric`` (default: the
    column's own name, corruptlab.report.stats.RANGES)."""
    bounds = bounds_of(metric or value)
    keys, grouped = groups(frame, keys)
    return [
        {
            **dict(zip(keys, key, strict=True)),
            **extra,
            **provenance(g),
            **mean_ci(g[value].to_numpy(float), bounds=bounds),
        }
        for key, g in grouped
    ]


def _run_columns(run: dict) -> dict:
    return {
        "run_id": run["run_id"],
        "model": run["model"],
        "noise_kind": run["noise"]["kind"],
        "variant": variant_of(run["noise"]),
        "max_epochs": run["max_epochs"],
        "seed": run["seed"],
    }


def _per_run_table(run_jsons: Sequence[str], paths: Sequence[str]) -> pd.DataFrame:
    """Every run's per-run parquet file, each row labelled with its run's columns."""
    frames = []
    for run_json, path in zip(run_jsons, paths, strict=True):
        run = read_json(run_json)["run"]
        frames.append(pd.read_parquet(path).assign(**_run_columns(run)))
    return pd.concat(frames, ignore_index=True)


def predictions_table(run_jsons: Sequence[str], predictions: Sequence[str]) -> pd.DataFrame:
    """Every run's per-example predictions with its run_id, model, data variant, epochs and seed
    (for per-example analyses: TENT's entropy deciles, memorization's P(correct))."""
    return _per_run_table(run_jsons, predictions)


def histories_table(run_jsons: Sequence[str], histories: Sequence[str]) -> pd.DataFrame:
    """Every run's training history (one row per epoch, with measurements made during training
    such as ``csr``) with its run_id, model, data variant, epochs and seed."""
    return _per_run_table(run_jsons, histories)


def config_subjects(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The frame split by the configuration columns that vary in it (model, noise, optimizer,
    ...; not the seed), each part labelled by its values; one part when nothing varies."""
    keys = [c for c in CONFIG_COLUMNS if c in frame and frame[c].nunique(dropna=False) > 1]
    if not keys:
        return [(str(frame["model"].iloc[0]), frame)] if len(frame) else []
    parts = frame.groupby(keys, dropna=False, sort=True)
    return [(" ".join(map(str, k if isinstance(k, tuple) else (k,))), g) for k, g in parts]
