"""The label_noise kind's derived tables: ``selection`` (Rolnick's lr selection per setting)."""

from __future__ import annotations

import pandas as pd

from corruptlab.report.tables import CONFIG_COLUMNS, OPTIM_COLUMNS, PROVENANCE_COLUMNS


def alpha_axis(frame: pd.DataFrame) -> pd.Series:
    """Noisy labels per clean label: ``alpha``, and 0 for clean labels (noise kind none)."""
    return frame["alpha"].where(frame["noise_kind"] != "none", 0.0)


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
