"""A region x selection matrix: one coloured square per effect, its value written in it and
a mark where its family-wise interval excludes zero."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.colors import TwoSlopeNorm

from saliency.viz.style import DIVERGING


def effect_matrix(
    ax: Axes,
    table: pd.DataFrame,
    regions: list[str],
    columns: list[str],
    label: str,
    digits: int = 2,
):
    """Draw ``table`` (``region``, ``selection``, ``effect``, ``marked``) as a matrix with
    ``regions`` as rows and ``columns`` as columns, centred at zero on a diverging map;
    a marked effect is written in bold with a frame. Returns the image (for a colour bar)."""
    values = np.full((len(regions), len(columns)), np.nan)
    marked = np.zeros_like(values, dtype=bool)
    at = table.set_index(["region", "selection"])
    for i, r in enumerate(regions):
        for j, c in enumerate(columns):
            if (r, c) in at.index:
                values[i, j] = at.loc[(r, c), "effect"]
                marked[i, j] = bool(at.loc[(r, c), "marked"])
    limit = float(np.nanmax(np.abs(values))) if np.isfinite(values).any() else 1.0
    limit = limit or 1.0
    image = ax.imshow(values, cmap=DIVERGING, aspect="auto",
                      norm=TwoSlopeNorm(0.0, -limit, limit))  # fmt: skip
    for i in range(len(regions)):
        for j in range(len(columns)):
            v = values[i, j]
            if not np.isfinite(v):
                ax.text(j, i, "-", ha="center", va="center", fontsize=6, color="0.4")
                continue
            strong = abs(v) > 0.55 * limit  # light text on the darkest squares
            text = f"{v:+.{digits}f}" if round(v, digits) != 0 else f"{0:.{digits}f}"
            ax.text(j, i, text, ha="center", va="center", fontsize=6,
                    color="white" if strong else "black",
                    fontweight="bold" if marked[i, j] else "normal")  # fmt: skip
            if marked[i, j]:
                ax.add_patch(_frame(ax, j, i))
    ax.set_xticks(range(len(columns)), columns)
    ax.set_yticks(range(len(regions)), regions)
    ax.tick_params(length=0)
    for side in ("top", "right", "bottom", "left"):
        ax.spines[side].set_visible(False)
    ax.set_xlabel(label)
    return image


def _frame(ax: Axes, x: float, y: float):
    from matplotlib.patches import Rectangle

    return Rectangle((x - 0.46, y - 0.46), 0.92, 0.92, fill=False, edgecolor="black",
                     linewidth=0.9)  # fmt: skip
