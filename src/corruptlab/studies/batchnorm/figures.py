"""The figures of the ``batchnorm`` kind (pyplot only inside the functions, through
``corruptlab.report.style.pyplot``)."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from corruptlab.report.style import STYLE, pyplot

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

BN_COLORS = {True: "tab:blue", False: "tab:red"}


def _label(bn: bool) -> str:
    return "with BN" if bn else "without BN"


def _panels(frame: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """One panel per (pair, init)."""
    return [
        (f"{pair} (+BN), {init} init", g)
        for (pair, init), g in frame.groupby(["pair", "init"], sort=True)
    ]


def _grid(n: int, width: float = 3.6, height: float = 2.8):
    plt = pyplot()
    cols = min(n, 3)
    rows = math.ceil(n / cols)
    fig, axes = plt.subplots(
        rows,
        cols,
        figsize=(max(width * cols + 0.6, 5.6), height * rows + 0.7),
        squeeze=False,
        layout="constrained",
    )
    flat = list(axes.flat)
    for ax in flat[n:]:
        ax.set_visible(False)
    return fig, flat[:n]


def accuracy_vs_lr(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Final clean test accuracy vs learning rate with and without batch norm, per pair and
    init: mean and 95% CI over the seeds that did not diverge; an x at the bottom marks a
    learning rate where some seed diverged (non-finite loss; the count beside it), and a hollow
    marker a mean over fewer seeds than the study's (the others diverged; one seed: no CI)."""
    plt = pyplot()
    sweep = tables["lr_sweep"]
    panels = _panels(sweep)
    seeds = int(sweep["n_runs"].max()) if len(sweep) else 0
    with plt.rc_context(STYLE):
        fig, axes = _grid(len(panels))
        for ax, (title, g) in zip(axes, panels, strict=True):
            for bn, d in g.groupby("bn", sort=False):
                d = d.sort_values("lr")
                color, label = BN_COLORS[bool(bn)], f"{d['model'].iloc[0]} ({_label(bn)})"
                ok = d[d["n"] > 0]
                ax.plot(ok["lr"], 100 * ok["mean"], color=color, label=label)
                ax.fill_between(
                    ok["lr"], 100 * ok["ci95_low"], 100 * ok["ci95_high"], color=color, alpha=0.2
                )
                full = ok["n"] == ok["n_runs"]
                for points, face in ((ok[full], color), (ok[~full], "white")):
                    ax.plot(points["lr"], 100 * points["mean"], ls="none", marker="o", ms=3.5,
                            color=color, mfc=face, zorder=3)  # fmt: skip
                div = d[d["n_diverged"] > 0]
                y = 2 if bn else -4
                ax.scatter(div["lr"], [y] * len(div), marker="x", color=color, s=30, zorder=3)
                for lr, k, n in zip(div["lr"], div["n_diverged"], div["n_runs"], strict=True):
                    ax.annotate(f"{k}/{n}", (lr, y), xytext=(3, 2), textcoords="offset points",
                                fontsize=6, color=color)  # fmt: skip
            ax.axhline(10, color="#999999", lw=0.8, ls=":")
            ax.set_xscale("log")
            ax.set_ylim(-8, 102)
            ax.set_title(title)
            ax.set_xlabel("learning rate (SGD, momentum 0.9)")
            ax.set_ylabel("clean test accuracy (%)")
            ax.legend(frameon=False, loc="center left", fontsize=7)
        title = (
            "Accuracy vs learning rate (mean, 95% CI over non-diverged seeds;\n"
            "x: seeds diverged at that lr; dotted: chance)"
        )
        if ((sweep["n"] > 0) & (sweep["n"] < sweep["n_runs"])).any():
            title += f"\nhollow: mean over fewer than {seeds} seeds (the others diverged)"
        fig.suptitle(title, fontsize=9)
    return fig


def grad_norm_hist(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Histograms at initialisation of the per-minibatch gradient norm of three layers (the
    second, a middle one and the last hidden layer), with and without batch norm, over the
    probe minibatches and seeds (log10 scale), per pair and init."""
    plt = pyplot()
    probe = tables["init_probe"]
    g = probe[probe["quantity"] == "grad_norm"]
    panels = _panels(g) if len(g) else []
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            max(len(panels), 1), 3, figsize=(9.6, 2.4 * max(len(panels), 1) + 0.6),
            squeeze=False, layout="constrained",
        )  # fmt: skip
        for row, (title, d) in zip(axes, panels, strict=False):
            n = int(d["layer"].max())
            layers = sorted({2, max(2, (n + 1) // 2), max(2, n - 1)})
            for ax, layer in zip(row, layers, strict=False):
                at = d[d["layer"] == layer]
                values = np.log10(at["value"].clip(lower=1e-30))
                bins = np.linspace(values.min() - 0.1, values.max() + 0.1, 25)
                for bn, b in at.groupby("bn", sort=False):
                    ax.hist(
                        np.log10(b["value"].clip(lower=1e-30)), bins=bins, alpha=0.55,
                        color=BN_COLORS[bool(bn)], label=f"{b['model'].iloc[0]}",
                    )  # fmt: skip
                ax.set_title(f"{title}: layer {layer} of {n}", fontsize=8)
                ax.set_xlabel("log10 gradient norm")
            for ax in row[len(layers) :]:
                ax.set_visible(False)
            row[0].set_ylabel("minibatches x seeds")
            row[0].legend(frameon=False, fontsize=7)
        fig.suptitle(
            "Per-layer gradient norms at initialisation (one count per probe minibatch and seed;\n"
            "layers numbered from the input, the last is the classifier)",
            fontsize=9,
        )
    return fig


def _vs_depth(
    tables: dict[str, pd.DataFrame], columns: tuple[tuple[str, str], ...], suptitle: str
) -> plt.Figure:
    """One row per pair and init, one column per (quantity, y label) of ``columns``: log10 of
    the quantity per layer, mean and 95% CI over seeds (``init_probe_summary``)."""
    plt = pyplot()
    s = tables["init_probe_summary"]
    s = s[s["quantity"].isin([q for q, _ in columns])]
    panels = _panels(s) if len(s) else []
    with plt.rc_context(STYLE):
        fig, axes = plt.subplots(
            max(len(panels), 1), len(columns), figsize=(7.6, 2.6 * max(len(panels), 1) + 0.7),
            squeeze=False, layout="constrained",
        )  # fmt: skip
        for row, (title, d) in zip(axes, panels, strict=False):
            for ax, (quantity, label) in zip(row, columns, strict=True):
                _lines(ax, d[d["quantity"] == quantity], "layer")
                ax.set_title(title, fontsize=8)
                ax.set_xlabel("layer (1 = first, last = classifier)")
                ax.set_ylabel(label)
            row[0].legend(frameon=False, fontsize=7)
        fig.suptitle(suptitle, fontsize=9)
    return fig


def gradients_vs_depth(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Gradients per layer at initialisation, per pair and init (rows): the gradient norm of
    each layer's weight (left) and the tail of its entries, q99.9 / q50 of their absolute
    values (right; dotted: 4.9, Gaussian entries), as log10, mean and 95% CI over seeds."""
    fig = _vs_depth(
        tables,
        (("grad_norm", "log10 gradient norm"), ("grad_tail", "log10 q99.9 / q50 of |gradient|")),
        "Gradients per layer at initialisation (mean of log10 over seeds, 95% CI;\n"
        "dotted: the tail of Gaussian entries)",
    )
    for ax in fig.axes[1::2]:
        ax.axhline(math.log10(4.9), color="#999999", lw=0.8, ls=":")
    return fig


def _lines(ax, d: pd.DataFrame, x: str) -> None:
    for bn, b in d.groupby("bn", sort=False):
        b = b.sort_values(x)
        color = BN_COLORS[bool(bn)]
        xs, mean = b[x].to_numpy(float), b["mean"].to_numpy(float)
        low, high = b["ci95_low"].to_numpy(float), b["ci95_high"].to_numpy(float)
        ax.plot(xs, mean, marker="o", ms=3, color=color, label=b["model"].iloc[0])
        ax.fill_between(xs, low, high, color=color, alpha=0.2, lw=0)


def activations_vs_depth(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Activations per layer at initialisation, per pair and init (rows): per linear or conv
    layer's output (batch norm's input in the BN model), the mean over its channels of each
    channel's std (left) and of each channel's absolute mean (right), over the probe minibatches,
    log10, mean and 95% CI over seeds."""
    return _vs_depth(
        tables,
        (("act_std", "log10 activation std"), ("act_mean", "log10 activation |mean|")),
        "Activations per layer at initialisation: per-channel std and |mean|\n"
        "(mean over channels; mean of log10 over seeds, 95% CI)",
    )


def relative_loss_vs_step(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """The loss after one step of size eta along the negative gradient, relative to the loss
    before, L(w - eta g) / L(w), at initialisation on the probe minibatches: mean of log10 and
    its 95% CI over seeds (a non-finite loss counts as 1e12), per pair and init; below 1 the
    step helped."""
    plt = pyplot()
    s = tables["init_probe_summary"]
    s = s[s["quantity"] == "relative_loss"]
    panels = _panels(s) if len(s) else []
    with plt.rc_context(STYLE):
        fig, axes = _grid(max(len(panels), 1))
        for ax, (title, d) in zip(axes, panels, strict=False):
            _lines(ax, d, "step_size")
            ax.axhline(0, color="#999999", lw=0.8, ls=":")
            ax.set_xscale("log")
            ax.set_title(title)
            ax.set_xlabel("step size eta")
            ax.set_ylabel("log10 L(w - eta g) / L(w)")
            ax.legend(frameon=False, fontsize=7)
        fig.suptitle(
            "Loss after one gradient step relative to before, at initialisation\n"
            "(mean of log10 over seeds, 95% CI; dotted: unchanged)",
            fontsize=9,
        )
    return fig
