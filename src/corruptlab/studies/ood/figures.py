"""The ood kind's figures: ROC curves per OOD set, and the AUROC grid of sets by scores."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from corruptlab.report.style import STYLE, pyplot
from corruptlab.report.tables import config_subjects

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

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


def roc_curves(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """ROC curves of OOD detection (in-distribution positive): one panel per OOD set and
    configuration, one line per score (the mean TPR over seeds at each FPR), the 95% CI over
    seeds as a band around the first score (msp, the baseline); the legend gives each score's
    mean AUROC."""
    from corruptlab.report.stats import mean_ci

    plt = pyplot()
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
                        band = [mean_ci(tpr[:, j], bounds=(0.0, 1.0)) for j in range(tpr.shape[1])]
                        ax.fill_between(
                            fpr,
                            [b["ci95_low"] for b in band],
                            [b["ci95_high"] for b in band],
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


def ood_auroc(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Mean AUROC over seeds per OOD set (rows) and score (columns), one panel per
    configuration."""
    plt = pyplot()
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
