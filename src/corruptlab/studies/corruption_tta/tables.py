"""The corruption_tta kind's derived tables: ``corruption_errors`` (error per corruption,
severity and method setting, and mCE) and ``entropy_deciles``."""

from __future__ import annotations

import pandas as pd

from corruptlab.report.stats import (
    bounds_of,
    mean_ci,
)
from corruptlab.report.tables import CONFIG_COLUMNS, EVAL_KEYS, ci_rows

# what identifies an adaptation method setting: the evaluation keys but the test condition
METHOD_KEYS = [k for k in EVAL_KEYS if k not in ("condition", "severity")]


def first_settings(frame: pd.DataFrame) -> pd.DataFrame:
    """The rows of each method's first configured setting (e.g. tent's first lr and batch size
    as the config lists them): the lowest ``method_order``, never the first in string order."""
    first = frame.groupby("method", sort=False)["method_order"].transform("min")
    return frame[frame["method_order"] == first]


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
    rows = ci_rows(corrupted, [*cfg, "condition", "severity"], "error", {"metric": "error"})
    per_seed = corrupted.groupby([*cfg, "severity", "seed"], dropna=False)["error"].mean()
    per_seed = per_seed.reset_index().assign(condition="mean")
    rows += ci_rows(per_seed, [*cfg, "condition", "severity"], "error", {"metric": "error"})
    overall = corrupted.groupby([*cfg, "seed"], dropna=False)["error"].mean().reset_index()
    rows += ci_rows(
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
            stats = mean_ci(g["error"].to_numpy(float), bounds=bounds_of("error"))
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
