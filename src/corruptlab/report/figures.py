"""Paper-style figures (a registry; each maps a study's tables to a matplotlib Figure)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from corruptlab.core.registry import Registry  # noqa: E402
from corruptlab.report.style import STYLE, model_color, model_order, save_figure  # noqa: E402, F401
from corruptlab.report.tables import first_settings  # noqa: E402

FigureFn = Callable[[dict[str, pd.DataFrame]], "plt.Figure"]
FIGURES: Registry[FigureFn] = Registry("figure")


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


def _panel_grid(n: int, height: float = 2.8):
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1,
            n,
            figsize=(max(4.2, 3.4 * n + 0.4), height),
            squeeze=False,
            sharey=True,
            layout="constrained",
        )
    return fig, axes[0]


@FIGURES.register("accuracy_vs_alpha")
def accuracy_vs_alpha(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Rolnick et al. Figure 1: test accuracy versus noisy labels per clean label, per model,
    with 95% confidence bands over seeds (lr selected on validation accuracy per point)."""
    panels = _noise_panels(tables["selection"])
    with plt.rc_context(STYLE):
        fig, axes = _panel_grid(len(panels))
        for ax, (title, data) in zip(axes, panels, strict=True):
            for model in model_order(data["model"]):
                d = data[data["model"] == model].sort_values("alpha_axis")
                color = model_color(model)
                ax.plot(
                    d["alpha_axis"],
                    100 * d["test_accuracy"],
                    marker="o",
                    ms=3.5,
                    color=color,
                    label=model,
                )
                ax.fill_between(
                    d["alpha_axis"],
                    100 * d["test_accuracy_ci95_low"],
                    100 * d["test_accuracy_ci95_high"],
                    color=color,
                    alpha=0.2,
                    lw=0,
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


@FIGURES.register("selected_lr_vs_alpha")
def selected_lr_vs_alpha(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """The learning rate chosen on validation accuracy at each alpha, per model."""
    panels = _noise_panels(tables["selection"])
    with plt.rc_context(STYLE):
        fig, axes = _panel_grid(len(panels))
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


# --- corruptions and test-time adaptation (Wang et al. 2021, TENT) -----------------------------

METHOD_COLORS = {"source": "#555555", "norm": "#1f77b4", "tent": "#d62728"}


@FIGURES.register("error_by_entropy_decile")
def error_by_entropy_decile(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """TENT Figure 1: error per decile of predictive entropy, deciles taken within each
    corrupted test set; thin lines: each corruption and severity, thick line and band: their
    mean with its 95% CI over runs; one panel per model."""
    t = tables["entropy_deciles"]
    models = model_order(t["model"]) or ["(no corrupted test sets)"]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1,
            len(models),
            squeeze=False,
            sharey=True,
            figsize=(0.4 + 3.4 * len(models), 2.8),
            layout="constrained",
        )
        for ax, model in zip(axes[0], models, strict=True):
            d = t[t["model"] == model]
            sets = list(d[d["condition"] != "mean"].groupby(["condition", "severity"]))
            for i, (_, g) in enumerate(sets):
                g = g.sort_values("decile")
                label = f"each of {len(sets)} test sets" if i == 0 else None
                ax.plot(g["decile"], 100 * g["error_mean"], color="0.6", lw=0.6, label=label)
            m = d[d["condition"] == "mean"].sort_values("decile")
            color = model_color(model)
            ax.plot(
                m["decile"],
                100 * m["error_mean"],
                marker="o",
                ms=3.5,
                color=color,
                label="mean over the sets (95% CI)",
            )
            ax.fill_between(
                m["decile"],
                100 * m["error_ci95_low"],
                100 * m["error_ci95_high"],
                color=color,
                alpha=0.2,
                lw=0,
            )
            ax.set_title(model)
            ax.set_xlabel("entropy decile within a test set (1 = most confident)")
            ax.set_xticks(range(1, 11))
            if len(d):
                ax.legend(frameon=False, loc="upper left")
            else:
                ax.text(0.5, 0.5, "no corrupted test set", ha="center", va="center")
        axes[0, 0].set_ylabel("error (%)")
        fig.suptitle("Error by predictive entropy decile (source model)", fontsize=9)
    return fig


@FIGURES.register("loss_entropy_by_severity")
def loss_entropy_by_severity(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """TENT Figure 2: loss (NLL) and entropy grow together with corruption severity."""
    from corruptlab.report.stats import mean_ci

    runs = tables["runs"]
    runs = runs[runs["method"] == "source"]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(1, 2, figsize=(7.0, 2.8), layout="constrained")
        for ax, metric, label in zip(
            axes, ("nll", "entropy"), ("loss (NLL, nats)", "entropy (nats)"), strict=True
        ):
            for model in model_order(runs["model"]):
                per_seed = (
                    runs[runs["model"] == model]
                    .groupby(["severity", "seed"])[metric]
                    .mean()
                    .reset_index()
                )
                stats = pd.DataFrame(
                    [
                        {"severity": s, **mean_ci(g[metric].to_numpy(float))}
                        for s, g in per_seed.groupby("severity")
                    ]
                )
                ax.plot(
                    stats["severity"],
                    stats["mean"],
                    marker="o",
                    ms=3.5,
                    color=model_color(model),
                    label=model,
                )
                ax.fill_between(
                    stats["severity"],
                    stats["ci95_low"],
                    stats["ci95_high"],
                    color=model_color(model),
                    alpha=0.2,
                    lw=0,
                )
            ax.set_xlabel("severity (0 = clean; mean over corruptions)")
            ax.set_ylabel(label)
        axes[-1].legend(title="model", frameon=False)
        fig.suptitle("Loss and entropy by corruption severity (source model)", fontsize=9)
    return fig


@FIGURES.register("error_by_corruption")
def error_by_corruption(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """TENT Figure 4: error per corruption at the highest severity for source, norm and tent."""
    e = tables["corruption_errors"]
    e = e[(e["metric"] == "error") & (e["condition"] != "mean")]
    at_max = e[e["severity"] == e["severity"].max()]
    e = first_settings(at_max)
    conditions = sorted(e["condition"].unique())
    settings = e.sort_values("method_order").drop_duplicates("method")
    methods = settings["method"].tolist()
    labels = dict(zip(methods, settings["method_id"], strict=True))
    left_out = at_max["method_id"].nunique() - len(methods)
    models = model_order(e["model"])
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            len(models),
            1,
            squeeze=False,
            layout="constrained",
            figsize=(
                max(4.2, 0.55 * len(conditions) * len(methods) / 2 + 1.5) + 2.4,
                2.6 * len(models),
            ),
        )
        width = 0.8 / max(1, len(methods))
        x = np.arange(len(conditions))
        for ax, model in zip(axes[:, 0], models, strict=True):
            for i, method in enumerate(methods):
                d = e[(e["model"] == model) & (e["method"] == method)].set_index("condition")
                d = d.reindex(conditions)
                err = 100 * d["mean"].to_numpy(float)
                lo = err - 100 * d["ci95_low"].to_numpy(float)
                hi = 100 * d["ci95_high"].to_numpy(float) - err
                ax.bar(
                    x + (i - (len(methods) - 1) / 2) * width,
                    err,
                    width,
                    yerr=np.nan_to_num(np.vstack([lo, hi])),
                    capsize=1.5,
                    color=METHOD_COLORS.get(method),
                    label=labels[method],
                )
            ax.set_xticks(x, [c.replace("_", " ") for c in conditions], rotation=45, ha="right")
            ax.set_ylabel("error (%)")
            ax.set_title(f"{model}, severity {int(e['severity'].max())}")
        axes[0, 0].legend(frameon=False, fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
        note = "each method at its first configured setting; bars: mean, 95% CI over seeds"
        if left_out:
            note += f"\n{left_out} other setting(s) in tables/corruption_errors.parquet"
        fig.supxlabel(note, fontsize=7, color="0.35")
    return fig


@FIGURES.register("tent_grid")
def tent_grid(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """TENT Figure 5: tent's error (mean over corruptions and severities) over its learning
    rate x batch size grid."""
    e = tables["corruption_errors"]
    e = e[
        (e["metric"] == "error")
        & (e["condition"] == "mean")
        & (e["severity"] == 0)
        & (e["method"] == "tent")
    ]
    # the grid over lr x batch size at the first configured steps and stream
    fixed = ""
    if len(e):
        first = e.loc[e["method_order"].idxmin()]
        e = e[(e["tta_steps"] == first["tta_steps"]) & (e["tta_stream"] == first["tta_stream"])]
        fixed = f"\n({int(first['tta_steps'])} step(s) per batch, {first['tta_stream']} stream)"
    models = model_order(e["model"]) or ["(no tent runs)"]
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1,
            len(models),
            squeeze=False,
            layout="constrained",
            figsize=(3.6 * len(models) + 0.6, 2.9),
        )
        for ax, model in zip(axes[0], models, strict=True):
            grid = e[e["model"] == model].pivot_table(
                index="tta_batch_size", columns="tta_lr", values="mean", aggfunc="mean"
            )
            if grid.empty:
                ax.text(0.5, 0.5, "tent not evaluated", ha="center", va="center")
                continue
            im = ax.imshow(100 * grid.to_numpy(), cmap="viridis_r", aspect="auto")
            for (r, c), v in np.ndenumerate(100 * grid.to_numpy()):
                shade = im.cmap(im.norm(v))  # dark text on light cells, light on dark
                luminance = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2]
                color = "black" if luminance > 0.5 else "white"
                ax.text(c, r, f"{v:.1f}", ha="center", va="center", fontsize=7, color=color)
            ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns])
            ax.set_yticks(range(grid.shape[0]), [f"{int(v)}" for v in grid.index])
            ax.set_xlabel("tent learning rate")
            ax.set_ylabel("test batch size")
            ax.set_title(model)
            ax.grid(False)
            fig.colorbar(im, ax=ax, label="error (%)")
        fig.suptitle(f"tent: mean error over corruptions and severities{fixed}", fontsize=9)
    return fig


# --- out-of-distribution detection ------------------------------------------------------------

SCORE_COLORS = {"msp": "#1f77b4", "entropy": "#ff7f0e", "energy": "#2ca02c", "max_logit": "#d62728"}


def _ood_set_order(frame: pd.DataFrame) -> list[str]:
    """OOD sets grouped by family (synthetic, corruption, dataset, held-out), as configured."""
    families = ("synthetic", "corruption", "dataset", "held_out")
    firsts = frame.drop_duplicates("ood_set")
    rank = {f: i for i, f in enumerate(families)}
    return sorted(
        firsts["ood_set"],
        key=lambda s: rank.get(firsts.loc[firsts["ood_set"] == s, "ood_family"].iloc[0], 9),
    )


@FIGURES.register("roc_curves")
def roc_curves(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """ROC curves of OOD detection (in-distribution positive): one panel per OOD set and
    configuration, one line per score (the mean TPR over seeds at each FPR), the 95% CI over
    seeds as a band around the first score (msp, the baseline); the legend gives each score's
    mean AUROC."""
    from corruptlab.report.stats import mean_ci
    from corruptlab.report.tables import config_subjects

    ood = tables["ood_runs"]
    subjects = config_subjects(ood)
    sets = _ood_set_order(ood)
    ncols = min(4, len(sets))
    nrows_per = -(-len(sets) // ncols)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            nrows_per * len(subjects),
            ncols,
            figsize=(2.5 * ncols + 0.6, 2.4 * nrows_per * len(subjects) + 0.4),
            squeeze=False,
            sharex=True,
            sharey=True,
            layout="constrained",
        )
        for ax in axes.flat:
            ax.set_visible(False)
        for r, (subject, frame) in enumerate(subjects):
            for i, ood_set in enumerate(sets):
                ax = axes[r * nrows_per + i // ncols, i % ncols]
                ax.set_visible(True)
                d = frame[frame["ood_set"] == ood_set]
                scores = [c for c in SCORE_COLORS if c in set(d["score"])]
                scores += sorted(set(d["score"]) - set(scores))
                for score in scores:
                    g = d[d["score"] == score]
                    fpr = np.asarray(g["roc_fpr"].iloc[0], float)
                    tpr = np.stack([np.asarray(v, float) for v in g["roc_tpr"]])
                    color = SCORE_COLORS.get(score, "#7f7f7f")
                    ax.plot(
                        fpr,
                        tpr.mean(0),
                        color=color,
                        lw=1.2,
                        label=f"{score} ({g['auroc'].mean():.3f})",
                    )
                    if score == scores[0] and len(g) > 1:  # one band keeps the panel legible
                        band = [mean_ci(tpr[:, j]) for j in range(tpr.shape[1])]
                        ax.fill_between(
                            fpr,
                            np.clip([b["ci95_low"] for b in band], 0, 1),
                            np.clip([b["ci95_high"] for b in band], 0, 1),
                            color=color,
                            alpha=0.15,
                            lw=0,
                        )
                ax.plot([0, 1], [0, 1], color="#999999", lw=0.8, ls=":")
                ax.set_title(ood_set if len(subjects) == 1 else f"{subject}: {ood_set}")
                ax.set_xlim(0, 1)
                ax.set_ylim(0, 1.01)
                ax.legend(
                    title="score (AUROC)",
                    frameon=False,
                    loc="lower right",
                    fontsize=6.5,
                    title_fontsize=6.5,
                )
                if i % ncols == 0:
                    ax.set_ylabel("TPR (in-distribution kept)")
                if i // ncols == nrows_per - 1 or i + ncols >= len(sets):
                    ax.set_xlabel("FPR (OOD accepted)")
        fig.suptitle(
            "OOD detection ROC curves (mean over seeds; band: 95% CI of the first score)",
            fontsize=9,
        )
    return fig


@FIGURES.register("ood_auroc")
def ood_auroc(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Mean AUROC over seeds per OOD set (rows) and score (columns), one panel per
    configuration."""
    from corruptlab.report.tables import config_subjects

    m = tables["ood_metrics"]
    m = m[m["metric"] == "auroc"]
    subjects = config_subjects(m)
    sets = _ood_set_order(m)
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1,
            len(subjects),
            squeeze=False,
            layout="constrained",
            figsize=(3.4 * len(subjects) + 0.8, 0.32 * len(sets) + 1.4),
        )
        for ax, (subject, frame) in zip(axes[0], subjects, strict=True):
            grid = frame.pivot_table(index="ood_set", columns="score", values="mean")
            grid = grid.reindex(index=[s for s in sets if s in grid.index])
            grid = grid[
                [s for s in SCORE_COLORS if s in grid] + [s for s in grid if s not in SCORE_COLORS]
            ]
            im = ax.imshow(grid.to_numpy(), cmap="viridis", vmin=0.5, vmax=1.0, aspect="auto")
            for (r, c), v in np.ndenumerate(grid.to_numpy()):
                ax.text(
                    c,
                    r,
                    f"{v:.3f}",
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="w" if v < 0.8 else "k",
                )
            ax.set_xticks(range(grid.shape[1]), list(grid.columns))
            ax.set_yticks(range(grid.shape[0]), list(grid.index))
            ax.set_title(subject)
            ax.grid(False)
        fig.colorbar(im, ax=axes[0, -1], label="AUROC (0.5 = chance)")
        fig.suptitle("OOD detection AUROC by set and score (mean over seeds)", fontsize=9)
    return fig


# --- memorization (Arpit et al. 2017) -----------------------------------------------------------

VARIANT_COLORS = {"real": "tab:blue", "randY": "tab:orange", "randX": "tab:green"}
MEMO_BY = ("model", "variant", "max_epochs")


def _variant_order(names) -> list[str]:
    known = list(VARIANT_COLORS)
    return sorted(set(names), key=lambda v: (known.index(v) if v in known else 9, v))


def _memo_panels(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One panel per (model, epochs)."""
    return [
        (f"{model}, {epochs} epoch{'s' if epochs != 1 else ''}", g)
        for (model, epochs), g in frame.groupby(["model", "max_epochs"], sort=True)
    ]


@FIGURES.register("p_correct_sorted")
def p_correct_sorted(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Arpit et al. Figure 1: each example's probability of being classified correctly over the
    seeds, sorted, per data variant; dashed: the sorted curve expected if every example were
    alike, Binomial(seeds, mean P(correct) of randX) / seeds."""
    from corruptlab.studies.memorization import binomial_reference, sorted_curve

    table = tables["p_correct"]
    panels = _memo_panels(table)
    with plt.rc_context(STYLE):
        fig, axes = _panel_grid(len(panels))
        for ax, (title, data) in zip(axes, panels, strict=True):
            for variant in _variant_order(data["variant"]):
                d = data[data["variant"] == variant]
                x, y = sorted_curve(d["p_correct"].to_numpy(float))
                color = VARIANT_COLORS.get(variant, "tab:gray")
                ax.plot(100 * x, y, color=color, lw=1.6, label=variant)
            randx = data[data["variant"] == "randX"]
            if len(randx):
                n_seeds = int(randx["n_seeds"].iloc[0])
                p = float(randx["p_correct"].mean())
                ref = binomial_reference(n_seeds, p, len(randx))
                x = np.linspace(0, 100, len(ref))
                ax.plot(x, ref, color="black", ls="--", lw=1, label=f"Binomial({n_seeds}, {p:.2f})")
            ax.set_title(title)
            ax.set_xlabel("examples, sorted (%)")
            ax.set_ylim(-0.02, 1.02)
        axes[0].set_ylabel("P(correct) over seeds")
        axes[-1].legend(frameon=False, loc="upper right")
        seeds = "/".join(map(str, sorted(table["n_seeds"].unique())))
        fig.suptitle(
            f"Per-example P(correct) over {seeds} seeds: real data has easy and hard examples,\n"
            "noise inputs (randX) do not",
            fontsize=9,
        )
    return fig


@FIGURES.register("csr_over_epochs")
def csr_over_epochs(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Arpit et al.'s critical sample ratio over training, per data variant: mean and 95% CI
    over seeds."""
    table = tables["csr"]
    panels = _memo_panels(table) if len(table) else [("no CSR measured", table)]
    with plt.rc_context(STYLE):
        fig, axes = _panel_grid(len(panels))
        for ax, (title, data) in zip(axes, panels, strict=True):
            for variant in _variant_order(data.get("variant", [])):
                d = data[data["variant"] == variant].sort_values("epoch")
                color = VARIANT_COLORS.get(variant, "tab:gray")
                ax.plot(d["epoch"], d["mean"], marker="o", ms=3.5, color=color, label=variant)
                ax.fill_between(
                    d["epoch"], d["ci95_low"], d["ci95_high"], color=color, alpha=0.2, lw=0
                )
            ax.set_title(title)
            ax.set_xlabel("epoch")
        axes[0].set_ylabel("critical sample ratio")
        if len(table):
            axes[-1].legend(frameon=False, loc="upper left")
        fig.suptitle(
            "Critical sample ratio during training (share of validation points an "
            "adversarial search within the L-inf ball crosses the boundary from)",
            fontsize=9,
        )
    return fig


def examples_grid(table: pd.DataFrame, images: dict[str, Any], k: int = 8) -> plt.Figure:
    """The ``k`` hardest and easiest examples (lowest and highest P(correct) over seeds) of each
    variant with image content (randX's inputs are noise), per model and epochs: ``images``
    maps a variant to uint8 images [N, H, W] indexed by example."""
    from corruptlab.studies.memorization import hardest_and_easiest

    table = table[table["variant"].isin(images)]
    ends = hardest_and_easiest(table, k, by=list(MEMO_BY)) if len(table) else table
    groups = list(ends.groupby(list(MEMO_BY), sort=True)) if len(ends) else []
    n_rows = max(1, 2 * len(groups))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            n_rows, k, figsize=(1.0 * k + 1.6, 1.25 * n_rows + 0.6), squeeze=False
        )
        for ax in axes.flat:
            ax.axis("off")
        for g_i, (key, g) in enumerate(groups):
            model, variant, epochs = key
            for e_i, end in enumerate(("hardest", "easiest")):
                r = 2 * g_i + e_i
                rows = g[g["end"] == end].head(k)
                for c, ex in enumerate(rows.itertuples(index=False)):
                    ax = axes[r, c]
                    ax.imshow(images[variant][int(ex.example)], cmap="gray_r", vmin=0, vmax=255)
                    ax.set_title(f"y={int(ex.label)} p={ex.p_correct:.2f}", fontsize=7)
                axes[r, 0].text(
                    -0.35,
                    0.5,
                    f"{variant}\n{model}, {epochs} ep.\n{end}",
                    transform=axes[r, 0].transAxes,
                    ha="right",
                    va="center",
                    fontsize=7,
                )
        fig.suptitle(
            "Hardest and easiest training examples (P(correct) over seeds; y = label trained on)",
            fontsize=9,
        )
        fig.tight_layout()
    return fig
