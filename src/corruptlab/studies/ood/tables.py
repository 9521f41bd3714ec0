"""The ood kind's tables: OOD metrics per configuration, OOD set and score, over seeds."""

from __future__ import annotations

import pandas as pd

from corruptlab.eval.ood import OOD_KEYS
from corruptlab.report.stats import bounds_of, mean_ci
from corruptlab.report.tables import CONFIG_COLUMNS, groups, provenance

OOD_METRICS = ["auroc", "fpr95", "aupr_in", "aupr_out"]


def ood_metrics(tables: dict[str, pd.DataFrame], study: dict) -> pd.DataFrame:
    """Per configuration, OOD set and score: each OOD metric's mean, std and 95% CI over seeds,
    with the in-distribution (clean test) accuracy of the same runs and the set sizes."""
    runs = tables["ood_runs"]
    keys, grouped = groups(runs, [*CONFIG_COLUMNS, *OOD_KEYS])
    rows = []
    for key, group in grouped:
        base = dict(zip(keys, key, strict=True))
        base["in_accuracy"] = float(group["in_accuracy"].mean())
        base["n_in"] = int(group["n_in"].iloc[0])
        base["n_out"] = int(group["n_out"].iloc[0])
        base.update(provenance(group))
        for metric in OOD_METRICS:
            values = group[metric].to_numpy(float)
            rows.append({**base, "metric": metric, **mean_ci(values, bounds=bounds_of(metric))})
    return pd.DataFrame(rows)
