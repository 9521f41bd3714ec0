"""The memorization kind's figures: the sorted P(correct) curves against the Binomial
reference, the critical sample ratio over epochs, and the hardest and easiest examples.

- ``sorted_curve`` and ``binomial_reference``: the sorted P(correct) curve of a group and the
  curve expected under Binomial(n_seeds, p), for the paper's figure;
- ``hardest_and_easiest``: the k examples at each end of the curve, for an image grid.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from corruptlab.report.style import STYLE, panel_grid, plot_band, pyplot
from corruptlab.studies.memorization.tables import _as_by, binomial_pmf

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

_QUANTILE_TOL = 1e-12  # a cdf within this of a plotting position counts as reaching it


def sorted_curve(p: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(x, y)``: ``y`` the values of ``p`` sorted in descending order, ``x`` = rank / (n - 1)
    in [0, 1] (``[0.0]`` for a single value), so curves of different lengths share an axis."""
    y = np.sort(np.asarray(p, dtype=float).ravel())[::-1]
    n = len(y)
    if n == 0:
        raise ValueError("sorted_curve: no values")
    x = np.arange(n) / (n - 1) if n > 1 else np.zeros(1)
    return x, y


def binomial_reference(n_seeds: int, p: float, n_examples: int) -> np.ndarray:
    """The expected sorted curve of ``n_examples`` i.i.d. Binomial(n_seeds, p) / n_seeds values.

    Value i (i = 1..n) of the ascending curve is the binomial quantile (the smallest k with
    cdf(k) >= q) at the plotting position q = (i - 0.5) / n, divided by n_seeds; returned in
    descending order, like ``sorted_curve``'s ``y``, as float64 of length ``n_examples``.
    """
    if int(n_examples) != n_examples or n_examples < 1:
        raise ValueError(f"n_examples must be a positive integer, got {n_examples!r}")
    cdf = np.cumsum(binomial_pmf(n_seeds, p))
    q = (np.arange(1, int(n_examples) + 1) - 0.5) / n_examples
    k = np.searchsorted(cdf, q - _QUANTILE_TOL, side="left")
    k = np.minimum(k, int(n_seeds))  # rounding can leave cdf[-1] a hair below 1
    return (k / n_seeds)[::-1].astype(float)


# ------------------------------------------------------------------------- hardest / easiest


def hardest_and_easiest(
    table: pd.DataFrame,
    k: int,
    by: str | Sequence[str] = ("variant", "epochs"),
    tie_seed: int | None = None,
) -> pd.DataFrame:
    """The ``k`` examples with the lowest (``end`` = "hardest") and the highest (``end`` =
    "easiest") P(correct) in each group of a ``per_example_p_correct`` table.

    Ties are broken by the smaller example index at both ends, or, with ``tie_seed``, in a
    random order of the examples drawn from it (the same in every group): with few seeds many
    examples tie at P(correct) 0 or 1, and splits stored in class order would otherwise show
    the tied examples of the first classes only. ``rank`` counts from 0 at the
    extreme (rank 0 of "hardest" is the hardest example). A group with fewer than 2k examples
    lists some examples at both ends; one with fewer than k lists all of them at each end.
    Returns the table's columns plus ``end`` and ``rank``, ordered by ``by``, end (hardest
    first) and rank.
    """
    if int(k) != k or k < 1:
        raise ValueError(f"hardest_and_easiest: k must be a positive integer, got {k!r}")
    keys = _as_by(by)
    for col in [*keys, "example", "p_correct"]:
        if col not in table.columns:
            raise ValueError(f"hardest_and_easiest: table has no column {col!r}")
    tie = table["example"]
    if tie_seed is not None:
        examples = np.unique(table["example"].to_numpy())
        order = np.random.default_rng(tie_seed).permutation(len(examples))
        tie = table["example"].map(dict(zip(examples, order, strict=True)))
    table = table.assign(_tie=tie.to_numpy())
    parts = []
    for end, ascending in (("hardest", True), ("easiest", False)):
        ordered = table.sort_values(
            [*keys, "p_correct", "_tie"],
            ascending=[True] * len(keys) + [ascending, True],
            kind="stable",
        )
        top = ordered.groupby(keys, sort=False).head(int(k)) if keys else ordered.head(int(k))
        top = top.copy()
        top["end"] = end
        top["rank"] = top.groupby(keys, sort=False).cumcount() if keys else np.arange(len(top))
        parts.append(top)
    out = pd.concat(parts, ignore_index=True)
    out["_end_order"] = (out["end"] == "easiest").astype(int)
    out = out.sort_values([*keys, "_end_order", "rank"], kind="stable")
    return out.drop(columns=["_end_order", "_tie"]).reset_index(drop=True)


# --- figures ------------------------------------------------------------------------------------


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


def p_correct_sorted(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Arpit et al. Figure 1: each example's probability of being classified correctly over the
    seeds, sorted, per data variant; dashed: the sorted curve expected if every example were
    alike, Binomial(seeds, mean P(correct) of randX) / seeds."""

    plt = pyplot()
    table = tables["p_correct"]
    panels = _memo_panels(table)
    with plt.rc_context(STYLE):
        fig, axes = panel_grid(len(panels))
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
            f"Per-example P(correct) over {seeds} seeds, examples sorted; dashed: the curve if "
            "every example were alike\n(a Binomial with randX's mean; the claims table tests "
            "each variant against it)",
            fontsize=9,
        )
    return fig


def csr_over_epochs(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Arpit et al.'s critical sample ratio over training, per data variant: mean and 95% CI
    over seeds."""
    from matplotlib.ticker import MaxNLocator

    plt = pyplot()
    table = tables["csr"]
    panels = _memo_panels(table) if len(table) else [("no CSR measured", table)]
    with plt.rc_context(STYLE):
        fig, axes = panel_grid(len(panels))
        for ax, (title, data) in zip(axes, panels, strict=True):
            for variant in _variant_order(data.get("variant", [])):
                d = data[data["variant"] == variant].sort_values("epoch")
                color = VARIANT_COLORS.get(variant, "tab:gray")
                plot_band(ax, d["epoch"], d["mean"], d["ci95_low"], d["ci95_high"], color, variant)
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[0].set_ylabel("critical sample ratio")
        if len(table):
            axes[-1].legend(frameon=False, loc="upper left")
        fig.suptitle(
            "Critical sample ratio during training: the share of validation points from which\n"
            "an adversarial search within a small L-inf ball crosses the decision boundary",
            fontsize=9,
        )
    return fig


def examples_grid(
    table: pd.DataFrame, images: dict[str, Any], k: int = 8, tie_seed: int | None = 0
) -> plt.Figure:
    """The ``k`` hardest and easiest examples (lowest and highest P(correct) over seeds) of each
    variant with image content (randX's inputs are noise), per model and epochs, ties broken in
    a random order drawn from ``tie_seed``: ``images`` maps a variant to uint8 images
    [N, H, W] indexed by example."""

    plt = pyplot()
    left_out = sorted(set(table["variant"]) - set(images))
    table = table[table["variant"].isin(images)]
    ends = (
        hardest_and_easiest(table, k, by=list(MEMO_BY), tie_seed=tie_seed) if len(table) else table
    )
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
        note = ""
        if left_out:
            note = f"\nnot shown: {', '.join(left_out)} (noise inputs: no image to show)"
        fig.suptitle(
            "Hardest and easiest training examples (P(correct) over seeds, ties in random order; "
            f"y = label trained on){note}",
            fontsize=9,
        )
        fig.tight_layout()
    return fig


def examples_figure(tables: dict[str, pd.DataFrame], study: dict, files: dict) -> Any:
    """The hardest and easiest examples as images: the training images each variant trained on
    (its labels file; randX's noise inputs are left out), or the clean test images."""
    from corruptlab.data.datasets import load_prepared
    from corruptlab.data.noise import load_noisy_labels, variant_of

    data = load_prepared(files["dataset"])
    table = tables["p_correct"]
    images = {}
    for spec, labels in files["labels"]:  # each data variant's (noise spec, labels file)
        variant = variant_of(spec)
        if study["memorization"]["examples"] == "test":
            images[variant] = data["test_images"].numpy()
            continue
        noisy = load_noisy_labels(labels)
        if noisy.n_synthetic:  # randX trains on noise images: nothing to show
            continue
        images[variant] = data["train_images"].numpy()[noisy.indices]  # by training position
    return examples_grid(table, images, tie_seed=study["memorization"]["data_seed"])
