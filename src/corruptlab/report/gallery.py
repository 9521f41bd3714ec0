"""The corruption gallery: one image under every registered corruption at every severity."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from corruptlab.data.corruptions import CORRUPTIONS, SEVERITIES, corrupt  # noqa: E402

if TYPE_CHECKING:
    from torch import Tensor

CELL = 0.62  # inches per image
LABEL = 1.25  # inches for the row labels


def gallery_figure(
    image_u8: Tensor, seed: int = 0, names: Sequence[str] | None = None
) -> plt.Figure:
    """A grid of ``image_u8`` (uint8 [H, W]) corrupted: one row per corruption (``names``,
    default every registered one in registry order), labelled on the left; columns clean and
    severities 1..5 ("s1".."s5"), all drawn with ``seed``, in grayscale on a 0..255 scale."""
    from corruptlab.report.style import STYLE

    names = list(CORRUPTIONS.names() if names is None else names)
    for name in names:
        CORRUPTIONS.get(name)  # an unknown name fails before any drawing
    if image_u8.ndim != 2:
        raise ValueError(f"expected one image [H, W], got shape {tuple(image_u8.shape)}")
    batch = image_u8.unsqueeze(0)
    columns = (0, *SEVERITIES)
    style = {**STYLE, "axes.grid": False, "axes.spines.top": True, "axes.spines.right": True}
    with plt.rc_context(style):
        fig, axes = plt.subplots(
            len(names),
            len(columns),
            figsize=(LABEL + CELL * len(columns), 0.35 + CELL * len(names)),
            squeeze=False,
            gridspec_kw={"wspace": 0.06, "hspace": 0.06},
        )
        for row, name in enumerate(names):
            for col, severity in enumerate(columns):
                ax = axes[row, col]
                image = corrupt(batch, name, severity, seed)[0]
                ax.imshow(
                    image.cpu().numpy(), cmap="gray", vmin=0, vmax=255, interpolation="nearest"
                )
                ax.set_xticks([])
                ax.set_yticks([])
                for spine in ax.spines.values():
                    spine.set_linewidth(0.4)
                if row == 0:
                    ax.set_title("clean" if severity == 0 else f"s{severity}", fontsize=8, pad=3)
            axes[row, 0].set_ylabel(
                name.replace("_", " "), rotation=0, ha="right", va="center", fontsize=8, labelpad=4
            )
        fig.subplots_adjust(
            left=LABEL / fig.get_figwidth(),
            right=0.995,
            bottom=0.05 / fig.get_figheight(),
            top=1 - 0.3 / fig.get_figheight(),
        )
    return fig
