"""Ablation figures: the true class's score before and after, per subgroup."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from saliency.viz.style import new_figure


def distributions_figure(per: pd.DataFrame, title: str) -> Figure:
    """Histograms of the true class's score (logit units) before and after, one panel per
    subgroup (or one for all); ``per`` holds one region's per-image rows."""
    groups = sorted(set(per["group"]) - {""}) or [""]
    fig = new_figure(2.6 * len(groups), 2.4)
    values = np.concatenate([per["score_before"], per["score_after"]])
    bins = np.linspace(np.nanmin(values), np.nanmax(values), 31) if len(values) else 10
    for k, g in enumerate(groups):
        ax = fig.add_subplot(1, len(groups), k + 1)
        rows = per if g == "" else per[per["group"] == g]
        ax.hist(rows["score_before"], bins=bins, alpha=0.6, label="before")
        ax.hist(rows["score_after"], bins=bins, alpha=0.6, label="after")
        ax.axvline(0, color="black", linewidth=0.6)
        ax.set_title(f"{g or 'all'} (n = {len(rows)})", fontsize=8)
        ax.set_xlabel("true class score (logit)", fontsize=7)
        ax.tick_params(labelsize=7)
        if k == 0:
            ax.legend(fontsize=7, frameon=False)
    fig.suptitle(title, fontsize=9)
    fig.subplots_adjust(top=0.8, bottom=0.2, wspace=0.3)
    return fig
