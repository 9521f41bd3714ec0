"""The look shared by every figure: rc settings, a fixed colour per model, panel grids, atomic
saving. Light at import: matplotlib is imported (with the Agg backend) by the first figure
drawn, through ``pyplot()``, so the study kinds' modules that define figures stay cheap for the
Snakefile."""

from __future__ import annotations

from typing import TYPE_CHECKING

from corruptlab.core.io import atomic_path
from corruptlab.train.models import MODELS

if TYPE_CHECKING:
    import matplotlib.pyplot as plt

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


def pyplot():
    """matplotlib.pyplot on the Agg backend (no display needed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def model_color(name: str) -> tuple:
    """A fixed colour per registered model, the same in every figure."""
    names = MODELS.names()
    return pyplot().get_cmap("tab10")(names.index(name) % 10 if name in names else 9)


def model_order(names) -> list[str]:
    registered = MODELS.names()
    return sorted(set(names), key=lambda n: (registered.index(n) if n in registered else 99, n))


def plot_band(
    ax, x, mean, low, high, color, label=None, scale: float = 1.0, linestyle: str = "-"
) -> None:
    """A line of means with markers and its 95% CI as a shaded band (values times ``scale``,
    e.g. 100 for percent)."""
    ax.plot(x, scale * mean, marker="o", ms=3.5, color=color, label=label, linestyle=linestyle)
    ax.fill_between(x, scale * low, scale * high, color=color, alpha=0.2, lw=0)


def panel_grid(n: int, height: float = 2.8):
    """A row of ``n`` panels sharing the y axis (in the STYLE context); returns (fig, axes)."""
    plt = pyplot()
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


def save_figure(fig: plt.Figure, png: str, pdf: str) -> None:
    """Write PNG (200 dpi) and PDF atomically, then close the figure."""
    for path, fmt in ((png, "png"), (pdf, "pdf")):
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format=fmt, dpi=200)
    pyplot().close(fig)
