"""Share panels: enrichment of each region with its 95% interval, per selection."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter


def shown_selections(
    summary: pd.DataFrame, selections: list[str] | None = None, max_bars: int = 6
) -> list[str]:
    """The selections an enrichment panel shows: ``selections`` present in ``summary`` (default
    its own), at most ``max_bars``."""
    present = list(dict.fromkeys(summary["selection"]))
    return [s for s in (selections or present) if s in present][:max_bars] or present[:1]


def enrichment_panel(ax: Axes, summary: pd.DataFrame, selections: list[str], title: str) -> Axes:
    """Bars of enrichment (share of positive attribution / share of area) per region on a
    log axis, one bar per selection, 95% interval whiskers; the dashed line at 1 is
    attribution in proportion to area. ``summary``: one split's rows."""
    regions = list(dict.fromkeys(summary["region"]))
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
    ax.set_yscale("log")
    plain = FuncFormatter(lambda v, _: f"{v:g}")  # 0.6, not 6 x 10^-1 (minor ticks too)
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain)
    ax.set_xticks(x, regions)
    ax.set_ylabel("enrichment\n(attribution share / area share)")
    ax.legend(fontsize=7, frameon=False, ncol=min(6, len(selections)), loc="upper center",
              bbox_to_anchor=(0.5, -0.12))  # fmt: skip
    ax.set_title(title)
    return ax
