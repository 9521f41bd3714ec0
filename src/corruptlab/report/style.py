"""The look shared by every figure: rc settings, a fixed colour per model, atomic saving."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from corruptlab.core.io import atomic_path  # noqa: E402
from corruptlab.train.models import MODELS  # noqa: E402

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
