"""The no_gd kind's figures (pyplot only through ``corruptlab.report.style.pyplot``, lazily)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from corruptlab.core.params import fmt_number
from corruptlab.report.claims import LEARNS_ABOVE
from corruptlab.report.stats import RANGES, mean_ci
from corruptlab.report.style import STYLE, pyplot
from corruptlab.report.tables import CONFIG_COLUMNS
from corruptlab.studies.no_gd.tables import EDGE_POPUP, _method_runs, clean_runs, config_of
from corruptlab.train.methods import MASK_DENSITY, NO_OPTIMIZER

if TYPE_CHECKING:
    import matplotlib.pyplot as plt


def _colors(n: int) -> list:
    """``n`` distinct colours, one per configuration (tab10, or tab20 beyond 10)."""
    plt = pyplot()
    cmap = plt.get_cmap("tab10" if n <= 10 else "tab20")
    return [cmap(i % cmap.N) for i in range(n)]


def _outside_legend(ax) -> None:
    ax.legend(frameon=False, fontsize=6, loc="upper left", bbox_to_anchor=(1.01, 1.0))


def _budget_figure(tables: dict[str, pd.DataFrame], axis: str, xlabel: str) -> plt.Figure:
    plt = pyplot()
    b = tables["budget"]
    b = b[b["axis"] == axis]
    models = sorted(b["model"].unique())
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            1,
            len(models),
            figsize=(4.2 * len(models) + 2.6, 3.2),  # the legend on the right
            squeeze=False,
            sharey=True,
            layout="constrained",
        )
        configs = sorted(b["config"].unique())
        colors = dict(zip(configs, _colors(len(configs)), strict=True))
        for ax, model in zip(axes[0], models, strict=True):
            d = b[b["model"] == model]
            for config, g in d.groupby("config", sort=True):
                g = g.sort_values("budget")
                label = config.split("/", 2)[-1]
                color = colors[config]
                ax.plot(g["budget"], 100 * g["mean"], color=color, lw=1.2, label=label)
                ax.fill_between(
                    g["budget"],
                    100 * g["ci95_low"],
                    100 * g["ci95_high"],
                    color=color,
                    alpha=0.18,
                    lw=0,
                )
            ax.set_xscale("log")
            ax.set_title(model)
            ax.set_xlabel(xlabel)
        axes[0, 0].set_ylabel("best validation accuracy (%)")
        _outside_legend(axes[0, -1])
    return fig


def accuracy_vs_examples(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Best validation accuracy within a budget of training examples forwarded (log scale), per
    method configuration: mean and 95% CI over seeds."""
    fig = _budget_figure(tables, "examples_forwarded", "training examples forwarded")
    fig.suptitle("Accuracy vs examples forwarded (mean, 95% CI over seeds)", fontsize=9)
    return fig


def accuracy_vs_seconds(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Best validation accuracy within a budget of wall seconds of training (log scale), per
    method configuration: mean and 95% CI over seeds."""
    fig = _budget_figure(tables, "seconds", "wall seconds of training")
    fig.suptitle("Accuracy vs wall-clock time (mean, 95% CI over seeds)", fontsize=9)
    return fig


def edge_popup_k(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Edge-popup test accuracy versus the kept fraction k of each layer's weights, per model
    (other hyper-parameters as separate lines): mean and 95% CI over seeds."""
    plt = pyplot()
    runs = _method_runs(clean_runs(tables["runs"]), EDGE_POPUP)
    line = runs["config"].str.replace(r"edge_popup-k[^-/]+", "edge_popup", regex=True)
    runs = runs.assign(line=line)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(figsize=(4.4, 3.0), layout="constrained")
        for i, (name, g) in enumerate(runs.groupby("line", sort=True)):
            points = []
            for k, gk in g.groupby("train_method_k", sort=True):
                points.append(
                    {"k": k, **mean_ci(gk["accuracy"].to_numpy(float), bounds=RANGES["accuracy"])}
                )
            p = pd.DataFrame(points)
            ax.plot(p["k"], 100 * p["mean"], marker="o", ms=3.5, color=f"C{i}", label=name)
            ax.fill_between(
                p["k"], 100 * p["ci95_low"], 100 * p["ci95_high"], color=f"C{i}", alpha=0.2, lw=0
            )
        ax.set_xlabel("k (kept fraction of each layer)")
        ax.set_ylabel("test accuracy (%)")
        ax.legend(frameon=False, fontsize=6)
        fig.suptitle("Edge-popup: accuracy vs k (mean, 95% CI over seeds)", fontsize=9)
    return fig


def config_labels(frame: pd.DataFrame) -> pd.Series:
    """A short label per row naming its configuration: the model and method, then the other
    configuration columns that vary in ``frame`` (``lr=0.1``), missing values left out."""
    fixed = ["model", "train_method_id"]
    varying = [
        c
        for c in CONFIG_COLUMNS
        if c in frame
        and c not in fixed
        and c != "train_method"
        and frame[c].nunique(dropna=False) > 1
    ]

    def label(row) -> str:
        words = [str(row[c]) for c in fixed if c in row]
        words += [
            f"{c}={fmt_number(row[c]) if isinstance(row[c], float) else row[c]}"
            for c in varying
            if pd.notna(row[c]) and row[c] != NO_OPTIMIZER["name"]
        ]
        return " ".join(words)

    return frame.apply(label, axis=1)


def trained_classifier(in_accuracy: pd.Series) -> pd.Series:
    """Whether a configuration is a trained classifier: its mean clean test accuracy (the
    in-distribution accuracy of its OOD rows) above ``LEARNS_ABOVE`` (0.5, the sanity claim's
    threshold; chance is 0.1 on ten digits). A search that ends near chance is not one, and its
    max-softmax AUROC says little about OOD detection by a classifier."""
    return in_accuracy > LEARNS_ABOVE


def ood_auroc_by_method(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Max-softmax AUROC per OOD set (groups) and method configuration (bars): mean and 95% CI
    over seeds; 0.5 is chance. Trained classifiers (``trained_classifier``) and the
    configurations that are not are drawn in separate panels, each bar's label with its test
    accuracy."""
    plt = pyplot()
    m = tables["ood_metrics"]
    m = m[(m["metric"] == "auroc") & (m["score"] == "msp")]
    m = m.assign(config=config_labels(m))
    accuracy = m.groupby("config")["in_accuracy"].mean()
    trained = trained_classifier(accuracy)
    sets = list(dict.fromkeys(m["ood_set"]))
    threshold = f"{100 * LEARNS_ABOVE:g}%"
    panels = [
        (f"trained classifiers (test accuracy > {threshold})", sorted(accuracy.index[trained])),
        (
            f"not trained classifiers (test accuracy <= {threshold})",
            sorted(accuracy.index[~trained]),
        ),
    ]
    panels = [(title, configs) for title, configs in panels if configs]
    colors = dict(zip(sorted(accuracy.index), _colors(len(accuracy)), strict=True))
    with plt.rc_context(STYLE):
        width = max(4.5, 1.1 * len(sets) + 2) + 2  # the legend on the right
        fig, axes = plt.subplots(
            len(panels),
            1,
            figsize=(width, 3.0 * len(panels) + 0.3),
            squeeze=False,
            layout="constrained",
        )  # one panel above the other, each with its legend
        for ax, (title, configs) in zip(axes[:, 0], panels, strict=True):
            for i, config in enumerate(configs):
                d = m[m["config"] == config].set_index("ood_set").reindex(sets)
                label = f"{config} (accuracy {100 * accuracy[config]:.0f}%)"
                _ci_bars(
                    ax, i, len(configs), d["mean"], d["ci95_low"], d["ci95_high"],
                    colors[config], label,
                )  # fmt: skip
            ax.axhline(0.5, color="#999999", lw=0.8, ls=":")
            ax.set_xticks(range(len(sets)), sets, rotation=20, ha="right")
            ax.set_ylim(0, 1.02)
            ax.set_title(title, fontsize=8)
            _outside_legend(ax)
            ax.set_ylabel("AUROC (msp)")
        fig.suptitle(
            "OOD detection by training method: max-softmax AUROC (mean, 95% CI over seeds; "
            "0.5 is chance)",
            fontsize=9,
        )
    return fig


def _ci_bars(ax, i: int, n: int, mean, low, high, color, label: str) -> None:
    """Bars of group member ``i`` of ``n`` side by side at each x position (width 0.8 / n), with
    their 95% CI as error bars (none where the CI is missing)."""
    width = 0.8 / max(n, 1)
    mean, low, high = (np.asarray(v, dtype=float) for v in (mean, low, high))
    x = np.arange(len(mean)) + (i - (n - 1) / 2) * width
    ax.bar(x, mean, width, color=color, label=label)
    err = np.nan_to_num(np.vstack([mean - low, high - mean]))
    ax.errorbar(x, mean, yerr=err, fmt="none", ecolor="k", lw=0.8)


def mask_density(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """The fraction of each layer's mask that is on at the end of training, per mask method
    configuration: mean and 95% CI over seeds."""
    plt = pyplot()
    h = tables["histories"]
    columns = [c for c in h if c.startswith(MASK_DENSITY)]
    last = h.sort_values("epoch").groupby("run_id", sort=True).tail(1)
    last = last.assign(config=config_of(last["run_id"])).dropna(subset=columns, how="all")
    configs = sorted(last["config"].unique())
    layers = [c[len(MASK_DENSITY) :] for c in columns]
    with plt.rc_context(STYLE):
        size = (max(4.5, 0.9 * len(layers) + 2) + 2, 3.0)  # the legend on the right
        fig, ax = plt.subplots(figsize=size, layout="constrained")
        for i, (config, color) in enumerate(zip(configs, _colors(len(configs)), strict=True)):
            g = last[last["config"] == config]
            stats = [mean_ci(g[c].to_numpy(float), bounds=(0.0, 1.0)) for c in columns]
            mean, low, high = ([s[k] for s in stats] for k in ("mean", "ci95_low", "ci95_high"))
            _ci_bars(ax, i, len(configs), mean, low, high, color, config.split("/", 2)[-1])
        ax.set_xticks(range(len(layers)), layers, rotation=20, ha="right")
        ax.set_ylim(0, 1.02)
        ax.set_ylabel("mask density (fraction on)")
        _outside_legend(ax)
        fig.suptitle("Mask density per layer at the end of training (mean, 95% CI)", fontsize=9)
    return fig
