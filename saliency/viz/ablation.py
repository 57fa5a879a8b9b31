"""Ablation panels: the true class's score before and after filling a region."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes


def score_bins(per: pd.DataFrame, n: int = 30) -> np.ndarray | int:
    """Shared histogram edges for the scores before and after (logit units)."""
    values = np.concatenate([per["score_before"], per["score_after"]])
    return np.linspace(np.nanmin(values), np.nanmax(values), n + 1) if len(values) else 10


def scores_panel(ax: Axes, rows: pd.DataFrame, bins, title: str, legend: bool = False) -> Axes:
    """Histograms of the true class's score before and after, for one region's rows."""
    # stepfilled: one outline per histogram, not one rectangle per bin (the same picture,
    # drawn many times faster in grids of panels)
    ax.hist(rows["score_before"], bins=bins, alpha=0.6, label="before", histtype="stepfilled")
    ax.hist(rows["score_after"], bins=bins, alpha=0.6, label="after", histtype="stepfilled")
    ax.axvline(0, color="black", linewidth=0.6)
    ax.set_title(title, fontsize=8)
    ax.set_xlabel("true class score (logit)", fontsize=7)
    ax.tick_params(labelsize=7)
    if legend:
        ax.legend(fontsize=7, frameon=False)
    return ax
