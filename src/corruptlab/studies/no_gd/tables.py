"""The no_gd kind's derived tables: validation accuracy within a budget of examples forwarded or
wall seconds (``budget``), and the helpers the claims and figures share (clean runs, run curves,
the methods the claims name)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from corruptlab.report.stats import RANGES, mean_ci
from corruptlab.report.tables import CONFIG_COLUMNS, provenance

# the names issue 16 gives the methods (claims look them up; absent ones are not applicable)
EDGE_POPUP, SUPERMASK = "edge_popup", "bernoulli_supermask"
EDGE_POPUP_K = 0.5  # the edge-popup claim's kept fraction (parameter ``k``)


def config_of(run_id: pd.Series) -> pd.Series:
    """The configuration id of each run id (its path without the seed)."""
    return run_id.str.rsplit("/seed", n=1).str[0]


def clean_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per run: its clean test accuracy (without test-time adaptation) and its
    configuration id (``config``)."""
    out = runs[runs["condition"] == "clean"]
    if "method" in out:
        out = out[out["method"] == "source"]
    return out.assign(config=config_of(out["run_id"]))


def run_curves(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per run and history row: the cumulative examples forwarded and wall seconds, and the best
    validation accuracy so far, with the run's configuration columns."""
    h = tables["histories"][["run_id", "epoch", "examples_forwarded", "seconds", "val_accuracy"]]
    runs = clean_runs(tables["runs"])
    keys = [c for c in [*CONFIG_COLUMNS, "train_method_k"] if c in runs]
    h = h.merge(runs[["run_id", "config", "seed", *keys]], on="run_id", how="inner")
    h = h.sort_values(["run_id", "epoch"], ignore_index=True)
    by = h.groupby("run_id", sort=False)
    h["cum_examples_forwarded"] = by["examples_forwarded"].cumsum().astype(float)
    h["cum_seconds"] = by["seconds"].cumsum().astype(float)
    h["best_val_accuracy"] = by["val_accuracy"].cummax()
    h["best_val_accuracy"] = h.groupby("run_id", sort=False)["best_val_accuracy"].ffill()
    return h


BUDGET_AXES = {"examples_forwarded": "cum_examples_forwarded", "seconds": "cum_seconds"}
BUDGET_POINTS = 16


def accuracy_within(curve: pd.DataFrame, budget: float, column: str) -> float:
    """A run's best validation accuracy among its rows within ``budget`` (of ``column``,
    cumulative; row 0, the initial weights, is always within)."""
    within = curve[curve[column] <= budget]
    return float(within["best_val_accuracy"].iloc[-1]) if len(within) else math.nan


def budget(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Validation accuracy within a budget, per configuration: at 16 log-spaced budgets of
    training examples forwarded (``axis: examples_forwarded``) and of wall seconds
    (``axis: seconds``), the best validation accuracy a run reached within the budget (its
    final one once it has stopped), with its mean and 95% CI over seeds."""
    curves = run_curves(tables)
    keys = [c for c in [*CONFIG_COLUMNS, "train_method_k"] if c in curves]
    rows = []
    for axis, column in BUDGET_AXES.items():
        positive = curves.loc[curves[column] > 0, column]
        if positive.empty:
            continue
        grid = np.unique(np.geomspace(positive.min(), curves[column].max(), BUDGET_POINTS))
        for config, group in curves.groupby("config", sort=True):
            base = {"config": config, **group[keys].iloc[0].to_dict(), "axis": axis}
            per_run = [g for _, g in group.groupby("run_id", sort=True)]
            for b in grid:
                values = [accuracy_within(g, b, column) for g in per_run]
                rows.append(
                    {
                        **base,
                        "budget": float(b),
                        "metric": "val_accuracy",
                        **provenance(tables["runs"]),
                        **mean_ci(values, bounds=RANGES["accuracy"]),
                    }
                )
    return pd.DataFrame(rows)


def _method_runs(runs: pd.DataFrame, name: str) -> pd.DataFrame:
    return runs[runs["train_method"] == name] if "train_method" in runs else runs.iloc[:0]
