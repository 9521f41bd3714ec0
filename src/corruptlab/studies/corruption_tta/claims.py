"""The corruption_tta kind's claims (TENT's, checked per model and method setting)."""

from __future__ import annotations

import pandas as pd

from corruptlab.report.claims import Paper, compare, not_applicable, our_setting
from corruptlab.report.stats import (
    bounds_of,
    diff_ci,
    difference_range,
    mean_ci,
    spearman,
)
from corruptlab.studies.corruption_tta.tables import first_settings

NOISE_CORRUPTIONS = ("gaussian_noise", "shot_noise", "impulse_noise")

# Wang et al. 2021, Table 2: CIFAR-10-C at severity 5, error averaged over the 15 corruptions,
# ResNet-26: source 40.8%, test-time normalisation (BN) 17.3%, tent 14.3%.
TENT_TABLE_2 = {"source": 0.408, "norm": 0.173, "tent": 0.143}


def _tent_paper(method: str, model: str, condition: str, study: dict) -> Paper:
    gap = TENT_TABLE_2[method] - TENT_TABLE_2["source"]
    name = "BN" if method == "norm" else "tent"
    return Paper(
        value=gap,
        setting=f"CIFAR-10-C severity 5, ResNet-26, mean over 15 corruptions: error {name} "
        f"{TENT_TABLE_2[method]:.1%} - source {TENT_TABLE_2['source']:.1%}",
        source="Wang et al. 2021, Tent: Fully Test-Time Adaptation by Entropy Minimization, "
        "Table 2",
        differs=our_setting(study, model, f"one corruption ({condition})")
        + "; not CIFAR-10-C's mean over 15 corruptions",
    )


def _tta_beats_source(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    claim = "tent and norm error below source on the noise corruptions at severity 5"
    quantity = "error(method) - error(source)"
    runs = tables["runs"]
    at5 = runs[runs["condition"].isin(NOISE_CORRUPTIONS) & (runs["severity"] == 5)]
    if at5.empty:
        reason = "the study has no noise corruption at severity 5"
        return [not_applicable(claim, "-", quantity, reason)]
    at5 = first_settings(at5)  # each method's first configured setting
    rows = []
    for (model, condition), g in at5.groupby(["model", "condition"], sort=True):
        source = g[g["method"] == "source"].set_index("seed")["accuracy"]
        for method in ("norm", "tent"):
            m = g[g["method"] == method]
            subject = f"{model} {method} ({condition})"
            paper = _tent_paper(method, model, condition, study)
            if m.empty or source.empty:
                reason = f"{method} not evaluated"
                rows.append(not_applicable(claim, subject, quantity, reason, paper=paper))
                continue
            d = diff_ci(
                1 - m["accuracy"].to_numpy(float),
                1 - source.to_numpy(float),
                bounds=difference_range("error"),
            )
            setting = m["method_id"].iloc[0]
            rows.append(compare(claim, subject, d, quantity, "<", 0, setting, paper))
    return rows


CLEAN_DROP = 0.02  # the most clean accuracy test-time adaptation may cost (2 points)


def _clean_accuracy_kept(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Sanity check: on the clean test set, every adaptation setting keeps the source model's
    accuracy (TENT's tables: norm and tent stay close to source on clean data). Broken batch
    statistics (e.g. a class-sorted stream) show here first."""
    claim = "norm and tent keep the clean accuracy of source (within 2 points)"
    quantity = "accuracy(method) - accuracy(source) on the clean test set, paired by seed"
    runs = tables["runs"]
    clean = runs[runs["condition"] == "clean"]
    adapted = clean[clean["method"] != "source"]
    if adapted.empty:
        return [not_applicable(claim, "-", quantity, "no adaptation method evaluated")]
    rows = []
    for model, g in clean.groupby("model", sort=True):
        source = g[g["method"] == "source"].set_index("seed")["accuracy"]
        settings = g[g["method"] != "source"].sort_values("method_order")
        for setting, m in settings.groupby("method_id", sort=False):
            subject = f"{model} {setting}"
            if source.empty:
                rows.append(not_applicable(claim, subject, quantity, "source not evaluated"))
                continue
            ordered = (m["tta_stream"] == "class_ordered").any()
            m = m.set_index("seed")["accuracy"]
            seeds = source.index.intersection(m.index)
            paired = (m[seeds] - source[seeds]).to_numpy(float)
            d = mean_ci(paired, bounds=difference_range("accuracy"))
            detail = f"source {source[seeds].mean():.4f}, {setting} {m[seeds].mean():.4f}"
            if ordered:  # a non-i.i.d. stream, evaluated to show its known failure
                reason = "class_ordered stream: test-batch statistics are expected to fail"
                rows.append(not_applicable(claim, subject, quantity, reason, d, detail))
                continue
            rows.append(compare(claim, subject, d, quantity, ">=", -CLEAN_DROP, detail))
    return rows


def _entropy_ranks_error(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Within each corrupted test set, the source model's predictive entropy rank-correlates
    with its errors (TENT's Figure 1 analysis); one row per test set and one for the mean over
    the test sets (per run the mean of its within-set correlations). Pooling the test sets into
    one correlation would mix how hard each set is with how certain each prediction is."""
    claim = "predictive entropy rank-correlates with error (source, within each corrupted set)"
    quantity = "Spearman(entropy, error), mean over runs"
    p = tables["predictions"]
    p = p[(p["condition"] != "clean") & (p["method"] == "source")]
    rho_range = bounds_of("spearman")
    rows = []
    for model, g in p.groupby("model", sort=True):
        per_set = pd.DataFrame(
            [
                {
                    "condition": c,
                    "severity": int(sev),
                    "run_id": r,
                    "rho": spearman(x["entropy"], ~x["correct"].astype(bool)),
                }
                for (c, sev, r), x in g.groupby(["condition", "severity", "run_id"], sort=True)
            ]
        )
        mean = per_set.groupby("run_id")["rho"].mean()
        s = mean_ci(mean.to_numpy(float), bounds=rho_range)
        detail = f"{per_set.groupby(['condition', 'severity']).ngroups} test sets"
        rows.append(compare(claim, f"{model} (mean over sets)", s, quantity, ">", 0, detail))
        for (c, sev), x in per_set.groupby(["condition", "severity"], sort=True):
            s = mean_ci(x["rho"].to_numpy(float), bounds=rho_range)
            rows.append(compare(claim, f"{model} ({c} s{sev})", s, quantity, ">", 0))
    return rows or [not_applicable(claim, "-", quantity, "no corrupted test set evaluated")]
