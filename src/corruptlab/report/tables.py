"""Tidy tables (a registry of derived tables; each maps its input tables to a DataFrame).

``runs``: one row per (run, condition) with every config field, the run's outcome and its
provenance as columns. Derived tables are computed from it and carry provenance too.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd

from corruptlab.core.io import read_json
from corruptlab.core.registry import Registry
from corruptlab.data.noise import NOISE, variant_of
from corruptlab.eval.metrics import METRICS
from corruptlab.report.stats import mean_ci
from corruptlab.train.objectives import OBJECTIVES
from corruptlab.train.optim import OPTIMIZERS
from corruptlab.train.schedules import SCHEDULES

TableFn = Callable[[dict[str, pd.DataFrame], dict], pd.DataFrame]
TABLES: Registry[TableFn] = Registry("table")

NOISE_PARAMS = list(dict.fromkeys(p.name for k in NOISE.items() for p in k[1].params))
OPTIM_PARAMS = list(dict.fromkeys(p.name for k in OPTIMIZERS.items() for p in k[1].params))
# lr_schedule and objective (their slugs) are columns only of studies whose runs have a
# non-constant schedule or a non-default objective (elsewhere: NaN), so that other studies'
# tables keep their columns
OPTIM_COLUMNS = ["optimizer", *OPTIM_PARAMS, "lr_schedule"]
CONFIG_COLUMNS = [
    "study",
    "kind",
    "dataset",
    "split_seed",
    "model",
    "noise_kind",
    *NOISE_PARAMS,
    *OPTIM_COLUMNS,
    "objective",
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
    row["noise_kind"] = run["noise"]["kind"]
    row.update({p: run["noise"].get(p, np.nan) for p in NOISE_PARAMS})
    row["optimizer"] = run["optimizer"]["name"]
    row.update({p: run["optimizer"].get(p, np.nan) for p in OPTIM_PARAMS})
    if "schedule" in run["optimizer"]:
        schedule = run["optimizer"]["schedule"]
        row["lr_schedule"] = SCHEDULES.get(schedule["name"]).slug(schedule)
    if "objective" in run:
        row["objective"] = OBJECTIVES.get(run["objective"]["name"]).slug(run["objective"])
    row.update({k: run[k] for k in ("batch_size", "max_epochs", "patience", "seed", "run_id")})
    classes = run.get("in_classes")
    row["in_classes"] = "all" if classes is None else ",".join(map(str, classes))
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


def _provenance(group: pd.DataFrame) -> dict:
    return {
        c: ";".join(sorted(map(str, group[c].dropna().unique())))
        for c in PROVENANCE_COLUMNS
        if c in group
    }


def _groups(frame: pd.DataFrame, keys: list[str]):
    keys = [k for k in keys if k in frame]
    return keys, frame.groupby(keys, dropna=False, sort=True)


@TABLES.register("summary")
def summary(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Per configuration and condition, each metric's mean, std, n and 95% CI over seeds."""
    runs = tables["runs"]
    metrics = [m for m in [*METRICS.names(), *OUTCOME_METRICS] if m in runs]
    keys, groups = _groups(runs, [*CONFIG_COLUMNS, *EVAL_KEYS])
    rows = []
    for key, group in groups:
        base = dict(zip(keys, key, strict=True))
        base["n_diverged"] = int((group["status"] == "diverged").sum())
        base.update(_provenance(group))
        for metric in metrics:
            rows.append({**base, "metric": metric, **mean_ci(group[metric].to_numpy(float))})
    return pd.DataFrame(rows)


def alpha_axis(frame: pd.DataFrame) -> pd.Series:
    """Noisy labels per clean label: ``alpha``, and 0 for clean labels (noise kind none)."""
    return frame["alpha"].where(frame["noise_kind"] != "none", 0.0)


@TABLES.register("selection")
def selection(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Rolnick's selection: per setting, the optimizer (lr) with the best mean validation
    accuracy, then that optimizer's clean test accuracy with its CI over seeds."""
    s = tables["summary"]
    s = s[s["condition"] == "clean"]
    if "method" in s:
        s = s[s["method"] == "source"]
    val = s[s["metric"] == "best_val_accuracy"]
    test = s[s["metric"] == "accuracy"]
    keys = [c for c in CONFIG_COLUMNS if c not in OPTIM_COLUMNS and c in s]
    config = keys + [c for c in OPTIM_COLUMNS if c in s]
    best = (
        val.sort_values("mean", ascending=False, kind="stable")
        .groupby(keys, dropna=False, sort=True)
        .head(1)
    )
    chosen = best[config + ["mean"]].rename(columns={"mean": "val_accuracy"})
    cols = config + ["n", "mean", "std", "ci95_low", "ci95_high", "n_diverged", *PROVENANCE_COLUMNS]
    out = chosen.merge(test[cols], on=config, how="left", validate="one_to_one")
    out = out.rename(
        columns={
            "mean": "test_accuracy",
            "std": "test_accuracy_std",
            "ci95_low": "test_accuracy_ci95_low",
            "ci95_high": "test_accuracy_ci95_high",
        }
    )
    out.insert(out.columns.get_loc("noise_kind") + 1, "alpha_axis", alpha_axis(out))
    return out.sort_values(keys, ignore_index=True)


def show(table: pd.DataFrame, columns: Sequence[str] | None = None) -> str:
    """A compact text rendering (for logs and the terminal)."""
    if columns is None:
        columns = [
            c
            for c in ("claim", "subject", "value", "ci95_low", "ci95_high", "result")
            if c in table
        ]
    with pd.option_context(
        "display.width",
        160,
        "display.max_colwidth",
        60,
        "display.max_rows",
        200,
        "display.float_format",
        "{:.4f}".format,
    ):
        return table[list(columns)].to_string(index=False)


# --- shift at test time: corruptions and test-time adaptation -----------------------------------

METHOD_KEYS = [
    "method",
    "method_id",
    "method_order",
    "tta_lr",
    "tta_batch_size",
    "tta_steps",
    "tta_stream",
]


def first_settings(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each method's first configured setting (e.g. tent's first lr and batch size
    as the config lists them): the lowest ``method_order``, never the first in string order."""
    first = frame.groupby("method", sort=False)["method_order"].transform("min")
    return frame[frame["method_order"] == first]


def _ci_rows(frame: pd.DataFrame, keys: list[str], value: str, extra: dict) -> list[dict]:
    keys, groups = _groups(frame, keys)
    return [
        {
            **dict(zip(keys, key, strict=True)),
            **extra,
            **_provenance(g),
            **mean_ci(g[value].to_numpy(float)),
        }
        for key, g in groups
    ]


@TABLES.register("corruption_errors")
def corruption_errors(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Test error under each corruption and severity, per configuration and adaptation method,
    with 95% CIs over seeds; ``condition == "mean"`` rows average over the corruptions (per
    severity, and over all severities with ``severity`` = 0); ``metric == "mCE"`` rows give the
    mean corruption error relative to the study's ``baseline_model`` (ImageNet-C's mCE:
    per corruption, the sum over severities of the model's error over the baseline's, averaged
    over corruptions)."""
    runs = tables["runs"]
    runs = runs.assign(error=1.0 - runs["accuracy"])
    corrupted = runs[runs["condition"] != "clean"]
    cfg = [c for c in [*CONFIG_COLUMNS, *METHOD_KEYS] if c in runs]
    rows = _ci_rows(corrupted, [*cfg, "condition", "severity"], "error", {"metric": "error"})
    per_seed = corrupted.groupby([*cfg, "severity", "seed"], dropna=False)["error"].mean()
    per_seed = per_seed.reset_index().assign(condition="mean")
    rows += _ci_rows(per_seed, [*cfg, "condition", "severity"], "error", {"metric": "error"})
    overall = corrupted.groupby([*cfg, "seed"], dropna=False)["error"].mean().reset_index()
    rows += _ci_rows(
        overall.assign(condition="mean", severity=0),
        [*cfg, "condition", "severity"],
        "error",
        {"metric": "error"},
    )
    rows += _mce_rows(corrupted, cfg, study.get("baseline_model"))
    return pd.DataFrame(rows)


def _mce_rows(corrupted: pd.DataFrame, cfg: list[str], baseline: str | None) -> list[dict]:
    """mCE per configuration and method setting: per corruption, the sum over severities of the
    setting's mean error divided by the same sum for one fixed reference, the baseline model
    without adaptation (``source``; Hendrycks & Dietterich 2019), then averaged over the
    corruptions. With one reference, mCEs compare across models and methods."""
    if not baseline or corrupted.empty:
        return []
    mean_err = corrupted.groupby([*cfg, "condition", "severity"], dropna=False)["error"].mean()
    summed = mean_err.groupby(level=[*cfg, "condition"], dropna=False).sum().reset_index()
    others = [c for c in cfg if c != "model" and c not in METHOD_KEYS]
    reference = summed[(summed["model"] == baseline) & (summed["method"] == "source")]
    if reference.empty:
        return []  # no reference: the baseline model was not evaluated without adaptation
    reference = reference[[*others, "condition", "error"]]
    merged = summed.merge(reference, on=[*others, "condition"], suffixes=("", "_baseline"))
    merged["ce"] = merged["error"] / merged["error_baseline"]
    out = merged.groupby(cfg, dropna=False)["ce"].agg(["mean", "count"]).reset_index()
    return [
        {
            **{c: r[c] for c in cfg},
            "condition": "mean",
            "severity": 0,
            "metric": "mCE",
            "n": int(r["count"]),
            "mean": float(r["mean"]),
            "baseline_model": baseline,
        }
        for _, r in out.iterrows()
    ]


def _per_run_deciles(p: pd.DataFrame) -> pd.DataFrame:
    """Per run and corrupted test condition, error and mean entropy per decile of predictive
    entropy within that condition (ranks break ties in the stored order)."""
    rows = []
    keys = ["model", "run_id", "condition", "severity"]
    for (model, run_id, condition, severity), g in p.groupby(keys, sort=True):
        decile = pd.qcut(g["entropy"].rank(method="first"), 10, labels=False)
        for d, dg in g.assign(decile=decile + 1).groupby("decile"):
            rows.append(
                {
                    "model": model,
                    "run_id": run_id,
                    "condition": condition,
                    "severity": int(severity),
                    "decile": int(d),
                    "entropy": float(dg["entropy"].mean()),
                    "error": float(1.0 - dg["correct"].mean()),
                }
            )
    return pd.DataFrame(rows, columns=[*keys, "decile", "entropy", "error"])


@TABLES.register("entropy_deciles")
def entropy_deciles(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """TENT Figure 1: error per decile of predictive entropy for the source model (no
    adaptation), deciles taken within each corrupted test condition of each run; mean and 95%
    CI over runs. Rows with ``condition == "mean"`` (severity 0) average each run's deciles over
    the conditions: within-condition ranks, so that easy and hard test sets are not what the
    deciles sort."""
    p = tables["predictions"]
    p = p[(p["condition"] != "clean") & (p["method"] == "source")]
    per_run = _per_run_deciles(p)
    pooled = (
        per_run.groupby(["model", "run_id", "decile"], sort=True)[["entropy", "error"]]
        .mean()
        .reset_index()
        .assign(condition="mean", severity=0)
    )
    rows = []
    for frame in (per_run, pooled):
        for (m, c, s, d), g in frame.groupby(["model", "condition", "severity", "decile"]):
            stats = mean_ci(g["error"].to_numpy(float))
            rows.append(
                {
                    "model": m,
                    "condition": c,
                    "severity": int(s),
                    "decile": int(d),
                    "entropy": float(g["entropy"].mean()),
                    "n_runs": len(g),
                    **{f"error_{k}": v for k, v in stats.items() if k != "n"},
                }
            )
    return pd.DataFrame(rows)


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


# --- memorization (Arpit et al. 2017) -----------------------------------------------------------

MEMO_KEYS = ["model", "variant", "max_epochs"]


@TABLES.register("p_correct")
def p_correct(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """P(correct) of each example over the seeds, per (model, data variant, epochs): the
    training examples as trained (``memorization.examples: train``) or the clean test set."""
    from corruptlab.data.datasets import example_subset
    from corruptlab.studies.memorization import per_example_p_correct

    mem = study["memorization"]
    p = tables["predictions"]
    condition = "train" if mem["examples"] == "train" else "clean"
    p = p[(p["condition"] == condition) & (p["method"] == "source")]
    if condition == "clean":  # the evaluation holds every test example: keep the study's subset
        n_test = int(p["index"].max()) + 1
        p = p[p["index"].isin(example_subset(n_test, mem["n_examples"], mem["data_seed"]))]
    frame = p.rename(columns={"index": "example"})[[*MEMO_KEYS, "seed", "example", "correct"]]
    table = per_example_p_correct(frame, by=MEMO_KEYS)
    labels = p.drop_duplicates([*MEMO_KEYS, "index"]).rename(columns={"index": "example"})
    # randY's labels are the same in every seed (one data seed): the label trained on
    table = table.merge(labels[[*MEMO_KEYS, "example", "label"]], on=[*MEMO_KEYS, "example"])
    return table.sort_values([*MEMO_KEYS, "example"], ignore_index=True)


@TABLES.register("csr")
def csr(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """The critical sample ratio per (model, data variant, epochs, epoch measured at): mean,
    95% CI and n over seeds."""
    h = tables["histories"]
    if "csr" not in h:
        return pd.DataFrame(columns=[*MEMO_KEYS, "epoch", "mean", "ci95_low", "ci95_high", "n"])
    h = h[h["csr"].notna()]
    return pd.DataFrame(_ci_rows(h, [*MEMO_KEYS, "epoch"], "csr", {}))


# --- out-of-distribution detection ------------------------------------------------------------

OOD_KEYS = ["ood_family", "ood_set", "score"]
OOD_METRICS = ["auroc", "fpr95", "aupr_in", "aupr_out"]


def config_subjects(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The frame split by the configuration columns that vary in it (model, noise, optimizer,
    ...; not the seed), each part labelled by its values; one part when nothing varies."""
    keys = [c for c in CONFIG_COLUMNS if c in frame and frame[c].nunique(dropna=False) > 1]
    if not keys:
        return [(str(frame["model"].iloc[0]), frame)] if len(frame) else []
    groups = frame.groupby(keys, dropna=False, sort=True)
    return [(" ".join(map(str, k if isinstance(k, tuple) else (k,))), g) for k, g in groups]


@TABLES.register("ood_metrics")
def ood_metrics(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Per configuration, OOD set and score: each OOD metric's mean, std and 95% CI over seeds,
    with the in-distribution (clean test) accuracy of the same runs and the set sizes."""
    runs = tables["ood_runs"]
    keys, groups = _groups(runs, [*CONFIG_COLUMNS, *OOD_KEYS])
    rows = []
    for key, group in groups:
        base = dict(zip(keys, key, strict=True))
        base["in_accuracy"] = float(group["in_accuracy"].mean())
        base["n_in"] = int(group["n_in"].iloc[0])
        base["n_out"] = int(group["n_out"].iloc[0])
        base.update(_provenance(group))
        for metric in OOD_METRICS:
            rows.append({**base, "metric": metric, **mean_ci(group[metric].to_numpy(float))})
    return pd.DataFrame(rows)
