"""Paper-style figures (a registry; each maps a study's tables to a matplotlib Figure)."""

from __future__ import annotations

from collections.abc import Callable

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from corruptlab.io import atomic_path  # noqa: E402
from corruptlab.models import MODELS  # noqa: E402
from corruptlab.registry import Registry  # noqa: E402

FigureFn = Callable[[dict[str, pd.DataFrame]], "plt.Figure"]
FIGURES: Registry[FigureFn] = Registry("figure")

STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "legend.fontsize": 8,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
    "savefig.bbox": "tight",
    "pdf.fonttype": 42,  # editable text in the PDF
}


def model_color(name: str) -> tuple:
    """A fixed colour per registered model, the same in every figure."""
    names = MODELS.names()
    return plt.get_cmap("tab10")(names.index(name) % 10 if name in names else 9)


def model_order(names) -> list[str]:
    registered = MODELS.names()
    return sorted(set(names), key=lambda n: (registered.index(n) if n in registered else 99, n))


def save_figure(fig: plt.Figure, png: str, pdf: str) -> None:
    """Write PNG (200 dpi) and PDF atomically, then close the figure."""
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=200)
    plt.close(fig)


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
        fig, axes = plt.subplots(1, n, figsize=(max(4.2, 3.4 * n + 0.4), height), squeeze=False,
                                 sharey=True, layout="constrained")  # fmt: skip
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
                ax.plot(d["alpha_axis"], 100 * d["test_accuracy"], marker="o", ms=3.5,
                        color=color, label=model)  # fmt: skip
                ax.fill_between(d["alpha_axis"], 100 * d["test_accuracy_ci95_low"],
                                100 * d["test_accuracy_ci95_high"], color=color, alpha=0.2,
                                lw=0)  # fmt: skip
            ax.set_title(title)
            ax.set_xlabel(r"noisy labels per clean label ($\alpha$)")
        axes[0].set_ylabel("test accuracy (%)")
        axes[-1].legend(title="model", frameon=False, loc="lower left")
        sel = tables["selection"]
        dataset = ", ".join(map(str, sel["dataset"].unique()))
        seeds = "/".join(map(str, sorted(sel["n"].dropna().astype(int).unique())))
        fig.suptitle(f"Test accuracy under label noise ({dataset})\n"
                     f"mean and 95% CI over {seeds} seeds; lr selected on validation accuracy",
                     fontsize=9)  # fmt: skip
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
                ax.plot(d["alpha_axis"], d["lr"] * 10 ** offsets[model], marker="o", ms=3.5,
                        color=model_color(model), label=model)  # fmt: skip
            ax.set_yscale("log")
            ax.set_title(title)
            ax.set_xlabel(r"noisy labels per clean label ($\alpha$)")
        axes[0].set_ylabel("selected learning rate")
        axes[-1].legend(title="model", frameon=False)
        fig.suptitle("Learning rate with the best validation accuracy", fontsize=9)
    return fig
