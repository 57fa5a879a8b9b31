"""Share figures: enrichment of each region with its 95% interval, per selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from saliency.viz.style import new_figure


def enrichment_figure(summary: pd.DataFrame, title: str, max_selections: int = 6) -> Figure:
    """Bars of enrichment (share of positive attribution / share of area) per region, one
    bar per selection (at most ``max_selections``, in table order), 95% interval whiskers;
    the line at 1 is attribution in proportion to area. ``summary``: one split's rows."""
    selections = list(dict.fromkeys(summary["selection"]))[:max_selections]
    regions = list(dict.fromkeys(summary["region"]))
    fig = new_figure(max(4.0, 0.9 * len(regions) + 0.25 * len(regions) * len(selections)), 2.8)
    ax = fig.add_subplot(1, 1, 1)
    width = 0.8 / len(selections)
    x = np.arange(len(regions))
    for k, sel in enumerate(selections):
        t = summary[summary["selection"] == sel].set_index("region").reindex(regions)
        est = t["enrichment"].to_numpy(float)
        err = np.abs(np.stack([est - t["enrichment_low"], t["enrichment_high"] - est]))
        n = int(t["n"].max())
        ax.bar(x + (k - (len(selections) - 1) / 2) * width, est, width * 0.95,
               yerr=err, capsize=1.5, error_kw={"linewidth": 0.6},
               label=f"{sel} (n = {n})")  # fmt: skip
    ax.axhline(1.0, color="black", linewidth=0.6, linestyle="--")
    ax.set_xticks(x, regions)
    ax.set_ylabel("enrichment (attribution share / area share)")
    ax.legend(fontsize=7, frameon=False, ncol=min(3, len(selections)))
    ax.set_title(title)
    return fig
