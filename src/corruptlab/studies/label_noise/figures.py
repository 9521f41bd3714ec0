"""The label_noise kind's figures (pyplot loaded lazily, through report.style.pyplot), and the
predicates that say which figures a study draws."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from corruptlab.report.style import (
    STYLE,
    model_color,
    model_order,
    panel_grid,
    plot_band,
    pyplot,
)

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

# Every noise setting of a study is in a figure: alpha-indexed ones (none, uniform, structured) in
# accuracy_vs_alpha, p-indexed ones (flip, randx) in accuracy_vs_p, and all of them in
# selected_lr_vs_alpha; each figure names the settings it leaves to another.

NOISE_NAMES = {
    "none": "clean labels",
    "uniform": "uniform label noise",
    "structured": "structured label noise",
    "flip": "flipped labels (randY)",
    "randx": "random inputs (randX)",
}
P_LABELS = {
    "flip": "fraction of labels made random (p)",
    "randx": "fraction of inputs made noise (p)",
}


def _alpha_noise(spec: dict) -> bool:
    return spec["kind"] == "none" or "alpha" in spec


def _p_noise(spec: dict) -> bool:
    return "p" in spec and "alpha" not in spec


def has_alpha_noise(study: dict) -> bool:
    """Whether a study has runs on an alpha axis: clean labels, uniform or structured noise."""
    return any(_alpha_noise(spec) for spec in study["noise"])


def has_p_noise(study: dict) -> bool:
    """Whether a study has runs indexed by a fraction p (flip, randx)."""
    return any(_p_noise(spec) for spec in study["noise"])


def lr_grid(study: dict) -> list[float]:
    """The distinct learning rates of a study's optimizer settings, ascending."""
    from corruptlab.core.grid import optimizer_grid

    return sorted({float(o["lr"]) for spec in study["optimizers"] for o in optimizer_grid(spec)})


def selects_lr(study: dict) -> bool:
    """Whether the study's selection chooses between learning rates (more than one in its grid)."""
    return len(lr_grid(study)) > 1


def _is_p(sel: pd.DataFrame) -> pd.Series:
    """Rows of p-indexed noise (flip, randx): a ``p`` and no alpha."""
    if "p" not in sel:
        return pd.Series(False, index=sel.index)
    return sel["p"].notna() & sel["alpha_axis"].isna()


def _setting_names(sel: pd.DataFrame) -> list[str]:
    """Noise settings of selection rows, e.g. ``flip p=0.4`` (distinct, sorted)."""
    names = set()
    for _, row in sel.iterrows():
        params = [
            f"{k}={row[k]:g}" for k in ("alpha", "delta", "p") if k in row and pd.notna(row[k])
        ]
        names.add(" ".join([row["noise_kind"], *params]))
    return sorted(names)


def _legend(ax, n_lines: int, loc: str) -> None:
    """The models' legend: inside the last panel, or beside it when there are more than three
    lines (models times settings), which would cover the data."""
    if n_lines > 3:
        ax.legend(title="model", frameon=False, loc="upper left", bbox_to_anchor=(1.02, 1.0))
    else:
        ax.legend(title="model", frameon=False, loc=loc)


def _noise_panels(sel: pd.DataFrame) -> tuple[list[tuple[str, pd.DataFrame]], bool]:
    """One panel per alpha-indexed noise family; clean runs (alpha = 0, noise kind none) join
    every panel that has no alpha = 0 of its own. Also returns whether they joined one."""
    sel = sel[sel["alpha_axis"].notna()]
    clean = sel[sel["noise_kind"] == "none"]
    noisy = sel[sel["noise_kind"] != "none"]
    panels, joined = [], False
    for (kind, delta), group in noisy.groupby(["noise_kind", "delta"], dropna=False, sort=True):
        title = f"{kind} label noise" + ("" if pd.isna(delta) else f", $\\delta$ = {delta:g}")
        if not (group["alpha_axis"] == 0).any():
            group, joined = pd.concat([clean, group]), True
        panels.append((title, group))
    if not panels:
        return [("clean labels", clean)], True
    return panels, joined or clean.empty


def _seeds(sel: pd.DataFrame) -> str:
    return "/".join(map(str, sorted(sel["n"].dropna().astype(int).unique())))


# settings besides the model, the noise and the optimizer (which the selection chooses) that a
# study may list several values of: each value gets a line (a row) of its own, never mixed
LINE_SETTINGS = {"objective": "objective", "batch_size": "bs", "max_epochs": "epochs"}
LINE_STYLES = ("-", "--", ":", "-.")


def _lines(sel: pd.DataFrame) -> tuple[pd.DataFrame, list[tuple[str, str, str]]]:
    """The selection with a ``line`` column: the model, and the settings of LINE_SETTINGS that
    vary in it (``mlp2, bs=64``); and each line's (label, model, line style), models in
    registry order."""
    keys = [c for c in LINE_SETTINGS if c in sel and sel[c].nunique(dropna=False) > 1]
    labels = sel["model"].astype(str)
    for c in keys:
        labels = labels + f", {LINE_SETTINGS[c]}=" + sel[c].astype(str)
    sel = sel.assign(line=labels)
    lines = []
    for model in model_order(sel["model"]):
        own = sel[sel["model"] == model]
        order = own.sort_values(keys, kind="stable")["line"].unique() if keys else [model]
        lines += [(line, model, LINE_STYLES[i % 4]) for i, line in enumerate(order)]
    return sel, lines


def accuracy_vs_alpha(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Rolnick et al. Figure 1: test accuracy versus noisy labels per clean label, per model,
    with 95% confidence bands over seeds (lr selected on validation accuracy per point).
    Noise without an alpha (flip, randx) is in ``accuracy_vs_p``; the figure names it."""
    plt = pyplot()
    sel, lines = _lines(tables["selection"])
    panels, clean_shown = _noise_panels(sel)
    with plt.rc_context(STYLE):
        fig, axes = panel_grid(len(panels))
        for ax, (title, data) in zip(axes, panels, strict=True):
            for line, model, style in lines:
                d = data[data["line"] == line].sort_values("alpha_axis")
                if d.empty:
                    continue
                plot_band(
                    ax,
                    d["alpha_axis"],
                    d["test_accuracy"],
                    d["test_accuracy_ci95_low"],
                    d["test_accuracy_ci95_high"],
                    model_color(model),
                    line,
                    scale=100,
                    linestyle=style,
                )
            ax.set_title(title)
            ax.set_xlabel(r"noisy labels per clean label ($\alpha$)")
        axes[0].set_ylabel("test accuracy (%)")
        _legend(axes[-1], len(lines), "lower left")
        dataset = ", ".join(map(str, sel["dataset"].unique()))
        title = (
            f"Test accuracy under label noise ({dataset})\n"
            f"mean and 95% CI over {_seeds(sel)} seeds; lr selected on validation accuracy"
        )
        left_out = []
        if _is_p(sel).any():
            left_out.append(f"{', '.join(_setting_names(sel[_is_p(sel)]))} (in accuracy_vs_p)")
        if not clean_shown:
            left_out.append("noise none (each panel has its own alpha = 0)")
        if left_out:
            title += "\nnot shown: " + "; ".join(left_out)
        fig.suptitle(title, fontsize=9)
    return fig


def _reference(sel: pd.DataFrame) -> tuple[str, pd.DataFrame]:
    """The p = 0 reference of p-indexed noise: the clean runs (noise none), else the alpha = 0
    runs of the first alpha-indexed family (uniform or structured at alpha 0 are clean labels);
    ("", empty) without either."""
    zero = sel[sel["alpha_axis"] == 0]
    if (zero["noise_kind"] == "none").any():
        return "clean labels", zero[zero["noise_kind"] == "none"]
    if zero.empty:
        return "", zero
    first = sorted(_setting_names(zero))[0]
    keep = [name == first for name in (_setting_names(zero.loc[[i]])[0] for i in zero.index)]
    return first.replace("alpha=", "$\\alpha$ = "), zero[keep]


def accuracy_vs_p(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """Test accuracy versus the fraction p of training labels (flip, Arpit et al.'s randY) or
    inputs (randx) replaced by random ones, per model: mean and 95% CI over seeds (lr selected
    on validation accuracy), with the clean runs (noise none, else alpha = 0) as p = 0. With
    one p, the points sit on a categorical axis (clean, p) with their CI bars."""
    plt = pyplot()
    sel, lines = _lines(tables["selection"])
    p_rows = sel[_is_p(sel)]
    ref_label, ref = _reference(sel)
    kinds = sorted(p_rows["noise_kind"].unique())
    with plt.rc_context(STYLE):
        fig, axes = panel_grid(len(kinds))
        shown = [line for line in lines if line[0] in set(p_rows["line"])]
        for ax, kind in zip(axes, kinds, strict=True):
            data = p_rows[p_rows["noise_kind"] == kind]
            ps = sorted(data["p"].unique())
            if len(ps) > 1:
                _p_lines(ax, data, ref, shown)
                ax.set_xlabel(P_LABELS.get(kind, "p"))
            else:
                _p_points(ax, data, ref, shown, ref_label, ps[0])
                ax.set_xlabel(P_LABELS.get(kind, "p"))
            ax.set_title(NOISE_NAMES.get(kind, kind))
        axes[0].set_ylabel("test accuracy (%)")
        _legend(axes[-1], len(shown), "best")
        dataset = ", ".join(map(str, sel["dataset"].unique()))
        reference = f"p = 0: {ref_label}" if len(ref) else "no clean runs (no p = 0)"
        fig.suptitle(
            f"Test accuracy with random labels or inputs ({dataset})\n"
            f"mean and 95% CI over {_seeds(p_rows)} seeds; lr selected on validation accuracy\n"
            f"{reference}",
            fontsize=9,
        )
    return fig


def _p_lines(ax, data: pd.DataFrame, ref: pd.DataFrame, lines: list) -> None:
    """Several p: a line and CI band per model (and setting), the reference at p = 0."""
    for line, model, style in lines:
        d = pd.concat([ref.assign(p=0.0), data])
        d = d[d["line"] == line].sort_values("p")
        plot_band(
            ax,
            d["p"],
            d["test_accuracy"],
            d["test_accuracy_ci95_low"],
            d["test_accuracy_ci95_high"],
            model_color(model),
            line,
            scale=100,
            linestyle=style,
        )


def _p_points(ax, data, ref, lines: list, ref_label: str, p: float) -> None:
    """One p: per model a point with its CI bar at each of the categories reference and p
    (models side by side within a category: the x axis is categorical, not p's value)."""
    groups = ([(f"p = 0\n({ref_label})", ref)] if len(ref) else []) + [(f"p = {p:g}", data)]
    width = 0.5
    offsets = np.linspace(-width / 2, width / 2, len(lines)) if len(lines) > 1 else [0.0]
    markers = {"-": "o", "--": "s", ":": "^", "-.": "D"}
    for offset, (line, model, style) in zip(offsets, lines, strict=True):
        xs, ys, lows, highs = [], [], [], []
        for i, (_, g) in enumerate(groups):
            row = g[g["line"] == line]
            if row.empty:
                continue
            row = row.iloc[0]
            xs.append(i + offset)
            ys.append(100 * row["test_accuracy"])
            lows.append(100 * (row["test_accuracy"] - row["test_accuracy_ci95_low"]))
            highs.append(100 * (row["test_accuracy_ci95_high"] - row["test_accuracy"]))
        ax.errorbar(
            xs,
            ys,
            yerr=[lows, highs],
            fmt=markers[style],
            ms=4,
            capsize=3,
            color=model_color(model),
            label=line,
        )
    ax.set_xticks(range(len(groups)), [name for name, _ in groups])
    ax.set_xlim(-0.6, len(groups) - 0.4)
    ax.grid(axis="x", visible=False)


def _setting_columns(sel: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    """The noise settings of a selection as table columns, in reading order: clean labels,
    each alpha family by alpha, then each p-indexed kind by p."""
    cols = []
    clean = sel[sel["noise_kind"] == "none"]
    if len(clean):
        cols.append(("none", clean))
    noisy = sel[sel["noise_kind"] != "none"]
    for (kind, delta), group in noisy[noisy["alpha_axis"].notna()].groupby(
        ["noise_kind", "delta"], dropna=False, sort=True
    ):
        name = kind if pd.isna(delta) else f"{kind}\n$\\delta$={delta:g}"
        for alpha, g in group.groupby("alpha_axis", sort=True):
            cols.append((f"{name}\n$\\alpha$={alpha:g}", g))
    p_rows = sel[_is_p(sel)]
    for (kind, p), g in p_rows.groupby(["noise_kind", "p"], sort=True):
        cols.append((f"{kind}\np={p:g}", g))
    return cols


def selected_lr_vs_alpha(tables: dict[str, pd.DataFrame]) -> plt.Figure:
    """The learning rate chosen on validation accuracy for each model (row) and noise setting
    (column: clean labels, each alpha, each flip / randx p), written in its cell at its true
    value and coloured by its place in the study's lr grid. Drawn only for a study whose grid
    has more than one learning rate."""
    plt = pyplot()
    from matplotlib.colors import BoundaryNorm, ListedColormap

    sel, lines = _lines(tables["selection"])
    grid = sorted(tables["summary"]["lr"].dropna().unique())
    cols = _setting_columns(sel)
    models = [line for line, _, _ in lines]
    index = np.full((len(models), len(cols)), np.nan)
    with plt.rc_context(STYLE):
        fig, ax = plt.subplots(
            figsize=(max(4.2, 0.85 * len(cols) + 2.2), 0.5 * len(models) + 1.7),
            layout="constrained",
        )
        colors = pyplot().get_cmap("viridis")(np.linspace(0.15, 0.85, len(grid)))
        cmap = ListedColormap(colors)
        norm = BoundaryNorm(np.arange(len(grid) + 1) - 0.5, len(grid))
        for j, (_, g) in enumerate(cols):
            for i, line in enumerate(models):
                row = g[g["line"] == line]
                if row.empty:
                    continue
                lr = float(row["lr"].iloc[0])
                index[i, j] = grid.index(lr)
                opt = row["optimizer"].iloc[0] if sel["optimizer"].nunique() > 1 else ""
                text = f"{opt} {lr:g}".strip()
                light = index[i, j] < len(grid) / 2
                ax.text(
                    j,
                    i,
                    text,
                    ha="center",
                    va="center",
                    fontsize=8,
                    color="white" if light else "black",
                )
        image = ax.imshow(np.ma.masked_invalid(index), cmap=cmap, norm=norm, aspect="auto")
        ax.set_xticks(range(len(cols)), [name for name, _ in cols])
        ax.set_yticks(range(len(models)), models)
        ax.grid(False)
        for side in ("top", "right", "left", "bottom"):
            ax.spines[side].set_visible(False)
        ax.tick_params(length=0)
        ax.set_xlabel("noise setting")
        ax.set_ylabel("model")
        bar = fig.colorbar(image, ax=ax, ticks=range(len(grid)), fraction=0.05, pad=0.02)
        bar.ax.set_yticklabels([f"{lr:g}" for lr in grid])
        bar.set_label("learning rate (the grid)")
        fig.suptitle("Learning rate with the best mean validation accuracy over seeds", fontsize=9)
    return fig
