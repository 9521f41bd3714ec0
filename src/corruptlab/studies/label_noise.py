"""Study kind ``label_noise``: Rolnick et al. 2017, "Deep Learning is Robust to Massive Label
Noise": test accuracy versus the number alpha of noisy labels per clean label (Figure 1), with
the learning rate selected on validation accuracy per point (the paper's protocol)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from corruptlab.report.claims import (
    Paper,
    claims_table,
    compare,
    learns,
    not_applicable,
    our_setting,
)
from corruptlab.report.stats import RANGES, diff_ci, difference_range, mean_ci
from corruptlab.report.style import (
    STYLE,
    model_color,
    model_order,
    panel_grid,
    plot_band,
    pyplot,
)
from corruptlab.report.tables import CONFIG_COLUMNS, OPTIM_COLUMNS, PROVENANCE_COLUMNS, summary
from corruptlab.studies import Output, StudyKind, register
from corruptlab.train.models import models_where

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

# --- tables -------------------------------------------------------------------------------------


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


# --- claims -------------------------------------------------------------------------------------


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


# --- figures ------------------------------------------------------------------------------------


def _noise_panels(sel: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One panel per alpha-indexed noise family; clean runs (alpha = 0) join every panel."""
    sel = sel[sel["alpha_axis"].notna()]
    clean = sel[sel["noise_kind"] == "none"]
    noisy = sel[sel["noise_kind"] != "none"]
    panels = []
    for (kind, delta), group in noisy.groupby(["noise_kind", "delta"], dropna=False, sort=True):
        title = f"{kind} label noise" + ("" if pd.isna(delta) else f", $\\delta$ = {delta:g}")
        panels.append((title, pd.concat([clean, group])))
    return panels or [("clean labels", clean)]


def accuracy_vs_alpha(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Rolnick et al. Figure 1: test accuracy versus noisy labels per clean label, per model,
    with 95% confidence bands over seeds (lr selected on validation accuracy per point)."""
    plt = pyplot()
    panels = _noise_panels(tables["selection"])
    with plt.rc_context(STYLE):
        fig, axes = panel_grid(len(panels))
        for ax, (title, data) in zip(axes, panels, strict=True):
            for model in model_order(data["model"]):
                d = data[data["model"] == model].sort_values("alpha_axis")
                plot_band(
                    ax,
                    d["alpha_axis"],
                    d["test_accuracy"],
                    d["test_accuracy_ci95_low"],
                    d["test_accuracy_ci95_high"],
                    model_color(model),
                    model,
                    scale=100,
                )
            ax.set_title(title)
            ax.set_xlabel(r"noisy labels per clean label ($\alpha$)")
        axes[0].set_ylabel("test accuracy (%)")
        axes[-1].legend(title="model", frameon=False, loc="lower left")
        sel = tables["selection"]
        dataset = ", ".join(map(str, sel["dataset"].unique()))
        seeds = "/".join(map(str, sorted(sel["n"].dropna().astype(int).unique())))
        fig.suptitle(
            f"Test accuracy under label noise ({dataset})\n"
            f"mean and 95% CI over {seeds} seeds; lr selected on validation accuracy",
            fontsize=9,
        )
    return fig


def selected_lr_vs_alpha(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """The learning rate chosen on validation accuracy at each alpha, per model."""
    plt = pyplot()
    panels = _noise_panels(tables["selection"])
    with plt.rc_context(STYLE):
        fig, axes = panel_grid(len(panels))
        models = model_order(tables["selection"]["model"])
        offsets = dict(zip(models, np.linspace(-0.06, 0.06, len(models)), strict=True))
        for ax, (title, data) in zip(axes, panels, strict=True):
            for model in models:
                d = data[data["model"] == model].sort_values("alpha_axis")
                # a small multiplicative offset keeps overlapping markers apart on the log axis
                ax.plot(
                    d["alpha_axis"],
                    d["lr"] * 10 ** offsets[model],
                    marker="o",
                    ms=3.5,
                    color=model_color(model),
                    label=model,
                )
            ax.set_yscale("log")
            ax.set_title(title)
            ax.set_xlabel(r"noisy labels per clean label ($\alpha$)")
        axes[0].set_ylabel("selected learning rate")
        axes[-1].legend(title="model", frameon=False)
        fig.suptitle("Learning rate with the best validation accuracy", fontsize=9)
    return fig


class LabelNoise(StudyKind):
    name = "label_noise"
    doc = "Rolnick et al. 2017: test accuracy versus noisy labels per clean label (Figure 1)"
    tables = {
        "summary": Output(summary, ("runs",)),
        "selection": Output(selection, ("summary",)),
        "claims": Output(claims_table, ("runs", "selection")),
    }
    figures = {
        "accuracy_vs_alpha": Output(accuracy_vs_alpha, ("selection",)),
        "selected_lr_vs_alpha": Output(selected_lr_vs_alpha, ("selection",)),
    }
    claims = (_learns_without_noise, _accuracy_falls, _ranking, _conv4_above_90)


register(LabelNoise())
