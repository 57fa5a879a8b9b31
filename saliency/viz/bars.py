"""Interval bars: one estimate per category and series, with its 95% interval."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter


def interval_bars(
    ax: Axes,
    table: pd.DataFrame,
    categories: list[str],
    series: list[str],
    colors: dict[str, str],
    ylabel: str,
    log: bool = False,
    reference: float | None = 0.0,
) -> Axes:
    """Grouped bars: x = ``categories``, one bar per ``series`` (with its n in the legend).

    ``table`` has columns ``category``, ``series``, ``value``, ``low``, ``high`` and ``n``;
    missing combinations leave a gap. ``reference`` draws a horizontal line (0 for changes,
    1 for ratios on a log axis; None for none)."""
    width = 0.8 / max(1, len(series))
    x = np.arange(len(categories))
    for k, name in enumerate(series):
        t = table[table["series"] == name].set_index("category").reindex(categories)
        est = t["value"].to_numpy(float)
        err = np.abs(np.stack([est - t["low"].to_numpy(float), t["high"].to_numpy(float) - est]))
        n = t["n"].max()
        label = f"{name} (n = {int(n)})" if n == n else name
        ax.bar(x + (k - (len(series) - 1) / 2) * width, est, width * 0.92, yerr=err,
               color=colors.get(name), capsize=1.2, error_kw={"linewidth": 0.5},
               label=label)  # fmt: skip
    if reference is not None:
        ax.axhline(reference, color="black", linewidth=0.5, linestyle="--" if log else "-")
    if log:
        ax.set_yscale("log")
        lo, hi = ax.get_ylim()
        decades = np.log10(hi / lo) if lo > 0 else 3.0
        subs = (1.0, 1.5, 2.0, 3.0, 5.0, 7.0) if decades < 0.8 else (1.0, 2.0, 5.0)
        ax.yaxis.set_major_locator(LogLocator(subs=subs if decades < 2 else (1.0,)))
        ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
        ax.yaxis.set_minor_formatter(NullFormatter())
    ax.set_xticks(x, categories)
    ax.set_ylabel(ylabel)
    return ax
