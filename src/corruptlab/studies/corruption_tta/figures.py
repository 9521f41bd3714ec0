"""The corruption_tta kind's figures (pyplot loaded lazily, through report.style.pyplot), and the
predicates that say which figures a study draws."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from corruptlab.report.stats import (
    bounds_of,
    mean_ci,
)
from corruptlab.report.style import STYLE, model_color, model_order, plot_band, pyplot
from corruptlab.studies.corruption_tta.tables import first_settings

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


def has_corruptions(study: dict) -> bool:
    """Whether a study evaluates under corruptions (the figures of corrupted test sets)."""
    return bool(study.get("evaluation", {}).get("corruptions"))


def has_tent(study: dict) -> bool:
    """Whether a study adapts with tent under corruptions (``tent_grid``)."""
    methods = study.get("evaluation", {}).get("methods", [])
    return has_corruptions(study) and any(m["name"] == "tent" for m in methods)


def corruption_gallery(tables: dict[str, pd.DataFrame], study: dict, files: dict) -> Any:
    """One test digit (the dataset's first) under every registered corruption and severity."""
    from corruptlab.data.datasets import load_prepared
    from corruptlab.report.gallery import gallery_figure

    data = load_prepared(files["dataset"])
    return gallery_figure(data["test_images"][0], seed=0)


METHOD_COLORS = {"source": "#555555", "norm": "#1f77b4", "tent": "#d62728"}


def error_by_entropy_decile(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """TENT Figure 1: error per decile of predictive entropy, deciles taken within each
    corrupted test set; thin lines: each corruption and severity, thick line and band: their
    mean with its 95% CI over runs; one panel per model."""
    plt = pyplot()
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
            plot_band(
                ax,
                m["decile"],
                m["error_mean"],
                m["error_ci95_low"],
                m["error_ci95_high"],
                model_color(model),
                "mean over the sets (95% CI)",
                scale=100,
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


def loss_entropy_by_severity(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """TENT Figure 2: loss (NLL) and entropy grow together with corruption severity."""
    plt = pyplot()
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
                        {
                            "severity": s,
                            **mean_ci(g[metric].to_numpy(float), bounds=bounds_of(metric)),
                        }
                        for s, g in per_seed.groupby("severity")
                    ]
                )
                plot_band(
                    ax,
                    stats["severity"],
                    stats["mean"],
                    stats["ci95_low"],
                    stats["ci95_high"],
                    model_color(model),
                    model,
                )
            ax.set_xlabel("severity (0 = clean; mean over corruptions)")
            ax.set_ylabel(label)
        axes[-1].legend(title="model", frameon=False)
        fig.suptitle("Loss and entropy by corruption severity (source model)", fontsize=9)
    return fig


def error_by_corruption(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """TENT Figure 4: error per corruption at the highest severity for source, norm and tent."""
    plt = pyplot()
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


def tent_grid(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """TENT Figure 5: tent's error (mean over corruptions and severities) over its learning
    rate x batch size grid, each cell annotated with its mean and the half-width of its 95% CI
    over seeds. One colour scale for every panel, from 0 to the next 10% at or above the
    largest error drawn or of the source model (no adaptation, the same mean): cells a few
    tenths of a point apart look alike, as they are; the panel title gives source's error and a
    line marks it on the colour bar."""
    plt = pyplot()
    e = tables["corruption_errors"]
    e = e[(e["metric"] == "error") & (e["condition"] == "mean") & (e["severity"] == 0)]
    source = 100 * e[e["method"] == "source"].groupby("model")["mean"].mean()
    e = e[e["method"] == "tent"]
    # the grid over lr x batch size at the first configured steps and stream
    fixed = ""
    if len(e):
        first = e.loc[e["method_order"].idxmin()]
        e = e[(e["tta_steps"] == first["tta_steps"]) & (e["tta_stream"] == first["tta_stream"])]
        fixed = f"\n({int(first['tta_steps'])} step(s) per batch, {first['tta_stream']} stream)"
    models = model_order(e["model"]) or ["(no tent runs)"]
    top = np.nanmax([100 * e["mean"].max(), source.max(), 0.0])
    vmax = float(min(100.0, max(10.0, 10 * np.ceil(top / 10 - 1e-9))))
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1,
            len(models),
            squeeze=False,
            layout="constrained",
            figsize=(3.2 * len(models) + 1.2, 3.1),
        )
        im = None
        for ax, model in zip(axes[0], models, strict=True):
            cells = e[e["model"] == model].assign(
                half=lambda d: (d["ci95_high"] - d["ci95_low"]) / 2
            )
            grid, half = (
                cells.pivot_table(
                    index="tta_batch_size", columns="tta_lr", values=v, aggfunc="mean"
                )
                for v in ("mean", "half")
            )
            if grid.empty:
                ax.text(0.5, 0.5, "tent not evaluated", ha="center", va="center")
                continue
            im = ax.imshow(
                100 * grid.to_numpy(), cmap="viridis_r", aspect="auto", vmin=0, vmax=vmax
            )
            for (r, c), v in np.ndenumerate(100 * grid.to_numpy()):
                shade = im.cmap(im.norm(v))  # dark text on light cells, light on dark
                luminance = 0.299 * shade[0] + 0.587 * shade[1] + 0.114 * shade[2]
                color = "black" if luminance > 0.5 else "white"
                h = 100 * half.reindex_like(grid).to_numpy()[r, c]
                text = f"{v:.1f}" + (f"\n±{h:.1f}" if np.isfinite(h) else "")
                ax.text(c, r, text, ha="center", va="center", fontsize=7, color=color)
            ax.set_xticks(range(grid.shape[1]), [f"{v:g}" for v in grid.columns])
            ax.set_yticks(range(grid.shape[0]), [f"{int(v)}" for v in grid.index])
            ax.set_xlabel("tent learning rate")
            ax.set_ylabel("test batch size")
            ax.set_title(
                f"{model}" + (f" (source: {source[model]:.1f}%)" if model in source else "")
            )
            ax.grid(False)
        if im is not None:
            drawn = source.reindex([m for m in models if m in source])
            label = "error (%)" + ("\nline: source (no adaptation)" if len(drawn) else "")
            bar = fig.colorbar(im, ax=list(axes[0]), label=label)
            for value in drawn:
                bar.ax.axhline(value, color="tab:red", lw=1.5)
        fig.suptitle(
            f"tent: mean error (%) over corruptions and severities{fixed}\n"
            f"cells: mean ± half its 95% CI over seeds; colour from 0 to {vmax:g}%",
            fontsize=9,
        )
    return fig
