"""The label_noise kind's claims, checked on the selected configurations' per-seed values."""

from __future__ import annotations

import pandas as pd

from corruptlab.report.claims import (
    Paper,
    compare,
    learns,
    not_applicable,
    our_setting,
)
from corruptlab.report.stats import RANGES, diff_ci, difference_range, mean_ci
from corruptlab.report.tables import CONFIG_COLUMNS
from corruptlab.studies.label_noise.tables import alpha_axis
from corruptlab.train.models import models_where


def selected_seed_values(tables: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per-seed clean test accuracy of the selected configurations, with an ``alpha_axis``."""
    runs = tables["runs"]
    runs = runs[runs["condition"] == "clean"]
    if "method" in runs:
        runs = runs[runs["method"] == "source"]
    sel = tables["selection"]
    keys = [c for c in CONFIG_COLUMNS if c in sel and c in runs]
    merged = runs.merge(sel[keys + ["alpha_axis"]], on=keys, how="inner")
    return merged.assign(alpha_axis=alpha_axis(merged))


def _families(values: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """Each alpha-indexed noise family (uniform; structured per delta) with the clean runs
    (alpha = 0) as its first point."""
    clean = values[values["noise_kind"] == "none"]
    out = []
    for (kind, delta), group in values[values["noise_kind"] != "none"].groupby(
        ["noise_kind", "delta"], dropna=False, sort=True
    ):
        if group["alpha"].isna().all():
            continue  # a noise kind without alpha (e.g. flip)
        label = kind if pd.isna(delta) else f"{kind}, delta={delta:g}"
        out.append((label, pd.concat([clean, group])))
    if not out and len(clean):
        out.append(("none", clean))
    return out


def _learns_without_noise(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    """Sanity: at alpha = 0 (clean labels, the selected learning rate) every model learns."""
    values = selected_seed_values(tables)
    clean = values[values["noise_kind"] == "none"]
    return learns("every model learns from clean labels (alpha = 0)", clean, ["model"])


def _accuracy_falls(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    claim = "accuracy falls as alpha grows"
    quantity = "test accuracy at the largest alpha - at the smallest"
    rows = []
    for label, fam in _families(selected_seed_values(tables)):
        for model, group in fam.groupby("model", sort=True):
            alphas = sorted(group["alpha_axis"].unique())
            subject = f"{model} ({label})"
            if len(alphas) < 2:
                rows.append(not_applicable(claim, subject, quantity, "fewer than two alphas"))
                continue
            lo, hi = alphas[0], alphas[-1]
            d = diff_ci(
                group.loc[group["alpha_axis"] == hi, "accuracy"],
                group.loc[group["alpha_axis"] == lo, "accuracy"],
                bounds=difference_range("accuracy"),
            )
            detail = f"accuracy(alpha={hi:g}) - accuracy(alpha={lo:g})"
            rows.append(compare(claim, subject, d, quantity, "<", 0, detail))
    return rows


def _ranking(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    claim = "conv4 >= MLPs >= perceptron at the largest alpha"
    quantity = "difference of test accuracies"
    rows = []
    for label, fam in _families(selected_seed_values(tables)):
        top = fam[fam["alpha_axis"] == fam["alpha_axis"].max()]
        models = set(top["model"])
        mlps = [m for m in models_where(family="mlp") if m in models]  # registry order
        pairs = [("conv4", m) for m in mlps if "conv4" in models]
        pairs += [(m, "perceptron") for m in mlps if "perceptron" in models]
        if not pairs and {"conv4", "perceptron"} <= models:
            pairs = [("conv4", "perceptron")]
        alpha = top["alpha_axis"].max()
        for better, worse in pairs:
            d = diff_ci(
                top.loc[top["model"] == better, "accuracy"],
                top.loc[top["model"] == worse, "accuracy"],
                bounds=difference_range("accuracy"),
            )
            subject = f"{better} - {worse} ({label}, alpha={alpha:g})"
            rows.append(compare(claim, subject, d, quantity, ">=", 0))
        if not pairs:
            reason = "needs conv4, an MLP or the perceptron side by side"
            rows.append(not_applicable(claim, label, quantity, reason))
    return rows


ROLNICK_ABOVE_90 = Paper(
    value=0.90,
    setting="MNIST (60,000 clean training images), a convolutional network, uniform label "
    "noise alpha = 100: test accuracy above 90%",
    source="Rolnick et al. 2017, Deep Learning is Robust to Massive Label Noise, abstract and "
    "Figure 1",
)


def _conv4_above_90(tables: dict[str, pd.DataFrame], study: dict) -> list[dict]:
    claim = "conv4 above 90% test accuracy at alpha = 100 (MNIST)"
    quantity = "test accuracy"
    values = selected_seed_values(tables)
    at = values[
        (values["model"] == "conv4")
        & (values["noise_kind"] == "uniform")
        & (values["alpha"] == 100)
    ]
    if study["dataset"] != "mnist":
        reason = f"dataset is {study['dataset']!r}, the claim is about full MNIST"
        return [not_applicable(claim, "conv4", quantity, reason, paper=ROLNICK_ABOVE_90)]
    if at.empty:
        reason = "the grid has no conv4 run with uniform noise at alpha = 100"
        return [not_applicable(claim, "conv4", quantity, reason, paper=ROLNICK_ABOVE_90)]
    s = mean_ci(at["accuracy"].to_numpy(float), bounds=RANGES["accuracy"])
    differs = our_setting(study, "our conv4 (the registry's conv net, not the paper's)")
    paper = Paper(
        ROLNICK_ABOVE_90.value, ROLNICK_ABOVE_90.setting, ROLNICK_ABOVE_90.source, differs
    )
    return [compare(claim, "conv4 (uniform, alpha=100)", s, quantity, ">", 0.90, paper=paper)]
