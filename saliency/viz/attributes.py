"""Image-attribute panels: distributions per cell, accuracy per attribute bin, and each
cell's gap with and without the attributes. One color per cell (:mod:`saliency.viz.style`).

Every panel takes the attribute stage's tables (``per_image.csv``, ``summary.csv``,
``bins.csv``, ``gaps.csv``) and draws on the axes it is given.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from saliency.analysis.attributes import ATTRIBUTES, LABELS
from saliency.viz.style import selection_colors, selection_order

UNITS = {
    "skin_brightness": "skin brightness (L*, 0-100)",
    "hair_over_face": "hair over the face (share)",
    "face_area": "visible face area (share)",
}
# (column prefix, legend label, marker) of the gap panel's estimates, top to bottom
GAP_ESTIMATES = (
    ("gap", "raw gap (Newcombe)", "o"),
    ("ame", "AME, cell only", "s"),
    ("ame_adjusted", "AME, with attributes", "D"),
    ("matched_gap", "matched subset (Newcombe)", "^"),
)


def distribution_panel(
    ax: Axes,
    per: pd.DataFrame,
    summary: pd.DataFrame,
    attribute: str,
    cells: list[str],
    colors: dict[str, str],
) -> Axes:
    """One violin per cell of ``attribute``'s values, with the mean and its 95% interval
    (black)."""
    data, shown = [], []
    for c in cells:
        v = per.loc[per["cell"] == c, attribute].to_numpy(np.float64)
        v = v[np.isfinite(v)]
        if len(v):
            data.append(v)
            shown.append(c)
    if not data:
        return ax
    x = np.arange(len(shown))
    parts = ax.violinplot(data, positions=x, widths=0.8, showextrema=False)
    for body, c in zip(parts["bodies"], shown, strict=True):
        body.set_facecolor(colors.get(c, "grey"))
        body.set_edgecolor("none")
        body.set_alpha(0.75)
    s = summary[summary["attribute"] == attribute].set_index("selection")
    for k, c in enumerate(shown):
        if c in s.index:
            r = s.loc[c]
            err = [[r["mean"] - r["mean_low"]], [r["mean_high"] - r["mean"]]]
            ax.errorbar(k, r["mean"], yerr=err, fmt="o", color="black", markersize=2.5,
                        capsize=1.5, linewidth=0.8)  # fmt: skip
    ax.set_xticks(x, shown)
    ax.set_title(UNITS.get(attribute, attribute))
    return ax


def bins_panel(
    ax: Axes, bins: pd.DataFrame, attribute: str, series: list[str], colors: dict[str, str]
) -> Axes:
    """Accuracy per quantile bin of ``attribute`` (x: the bins, labelled with their ranges),
    one line per selection with 95% Wilson intervals, side by side within each bin."""
    t = bins[bins["attribute"] == attribute]
    edges = t.drop_duplicates("bin").sort_values("bin")
    if not len(edges):
        return ax
    shown = [s for s in series if s in set(t["selection"])]
    step = 0.7 / max(1, len(shown))
    for k, name in enumerate(shown):
        r = t[(t["selection"] == name) & (t["n"] > 0)].sort_values("bin")
        x = r["bin"].to_numpy(float) + (k - (len(shown) - 1) / 2) * step
        acc = r["accuracy"].to_numpy(float) * 100
        err = np.stack([acc - r["ci_low"].to_numpy(float) * 100,
                        r["ci_high"].to_numpy(float) * 100 - acc])  # fmt: skip
        ax.errorbar(x, acc, yerr=err, color=colors.get(name, "grey"), marker="o",
                    markersize=2.5, linewidth=0.8, elinewidth=0.6, capsize=1.0,
                    label=name)  # fmt: skip
    fmt = _number_format(edges[["low", "high"]].to_numpy(float))
    labels = [f"{fmt(lo)}\N{EN DASH}{fmt(hi)}" for lo, hi in
              zip(edges["low"], edges["high"], strict=True)]  # fmt: skip
    if max(len(t) for t in labels) > 9:  # long ranges: one edge per line, so they fit
        labels = [t.replace("\N{EN DASH}", "\n\N{EN DASH}") for t in labels]
    ax.set_xticks(edges["bin"].to_numpy(), labels, fontsize=5.5)
    ax.set_xlabel(f"{LABELS.get(attribute, attribute)}: quantile bins")
    ax.set_ylim(top=min(105.0, ax.get_ylim()[1]))
    return ax


def _number_format(values: np.ndarray):
    """Short labels for bin edges: the fewest decimals (up to 3) that tell the edges apart;
    shares without the leading zero."""
    edges = np.unique(values[np.isfinite(values)])
    decimals = next((d for d in range(4) if len(np.unique(np.round(edges, d))) == len(edges)), 3)
    if np.all(np.abs(edges) < 1):
        decimals = max(decimals, 2)
        return lambda v: f"{v:.{decimals}f}".replace("0.", ".", 1)
    return lambda v: f"{v:.{decimals}f}"


def gap_panel(ax: Axes, gaps: pd.DataFrame, colors: dict[str, str]) -> Axes:
    """Each cell's gap (its accuracy minus the rest's, points) four ways, with 95%
    intervals: raw, the AME without and with the attributes, and on the matched subset;
    the AME's change with its interval, and the matched subset's size, on the right."""
    cells = selection_order(list(gaps["cell"]))
    g = gaps.set_index("cell")
    rows = len(GAP_ESTIMATES)
    for i, c in enumerate(cells):
        r = g.loc[c]
        for j, (key, _, marker) in enumerate(GAP_ESTIMATES):
            y = i * (rows + 1) + j
            est, lo, hi = (float(r[key]) * 100, float(r[f"{key}_low"]) * 100,
                           float(r[f"{key}_high"]) * 100)  # fmt: skip
            if not np.isfinite(est):
                continue
            # the interval as a line of its own: a percentile interval need not hold its
            # estimate (a penalized fit, a cell that is always right), and error bars can't
            color = colors.get(c, "grey")
            ax.plot([lo, hi], [y, y], color=color, linewidth=0.8, marker="|", markersize=3)
            ax.plot([est], [y], marker=marker, color=color, markersize=3, linestyle="none")
    ax.axvline(0, color="black", linewidth=0.5)
    centre = [i * (rows + 1) + (rows - 1) / 2 for i in range(len(cells))]
    ax.set_yticks(centre, [f"{c} (n = {int(g.loc[c, 'n'])})" for c in cells])
    ax.set_ylim(len(cells) * (rows + 1) - 1.0, -1.0)  # first cell on top
    ax.set_xlabel("accuracy of the cell minus the rest's (percentage points), 95% intervals")
    right = ax.twinx()  # the change (adjusted minus cell-only AME) beside each cell
    right.set_ylim(ax.get_ylim())
    right.set_yticks(centre, [_change(g.loc[c]) for c in cells], fontsize=5.5)
    right.tick_params(right=False)
    right.spines[["top", "right", "left", "bottom"]].set_visible(False)
    handles = [Line2D([], [], color="black", marker=m, linestyle="none", markersize=3,
                      label=label) for _, label, m in GAP_ESTIMATES]  # fmt: skip
    ax.legend(handles=handles, frameon=False, loc="lower center", bbox_to_anchor=(0.5, 1.0),
              ncol=len(handles), handletextpad=0.3)  # fmt: skip
    return ax


def _change(r: pd.Series) -> str:
    """The change of the AME with its interval, and the matched subset's size."""
    text = "" if not np.isfinite(r["change"]) else (
        f"AME change {r['change'] * 100:+.1f} [{r['change_low'] * 100:+.1f}, "
        f"{r['change_high'] * 100:+.1f}]\n")  # fmt: skip
    return text + f"matched on {int(r['matched_n'])} + {int(r['matched_n'])} images"


def attributes_figure(
    fig: Figure,
    per: pd.DataFrame,
    summary: pd.DataFrame,
    bins: pd.DataFrame,
    gaps: pd.DataFrame,
) -> Figure:
    """The whole figure on ``fig`` (laid out by constrained layout): distributions per cell
    (top row), accuracy per bin (middle row) with the cells' legend, each cell's gap (bottom,
    a subfigure of its own, so its labels do not widen the panels above)."""
    cells = selection_order(sorted(set(per["cell"].astype(str))))
    series = selection_order(["all", *cells])
    colors = selection_colors(series)
    attrs = [a for a in ATTRIBUTES if a in per.columns]
    top, bottom = fig, None
    if len(gaps):
        top, bottom = fig.subfigures(2, 1, height_ratios=[2.3, 0.5 + 0.25 * len(cells)])
    axes = top.subplots(2, len(attrs), squeeze=False)
    for k, a in enumerate(attrs):
        distribution_panel(axes[0, k], per, summary, a, cells, colors)
        bins_panel(axes[1, k], bins, a, series, colors)
    axes[1, 0].set_ylabel("accuracy (%)")
    handles, names = axes[1, 0].get_legend_handles_labels()
    n = per["cell"].astype(str).value_counts()
    labels = [f"{s} (n = {len(per) if s == 'all' else n.get(s, 0)})" for s in names]
    if handles:
        top.legend(handles, labels, ncol=len(labels), loc="outside lower center", frameon=False)
    if bottom is not None:
        gap_panel(bottom.subplots(), gaps, colors)
    return fig
