"""Explanation quality per cell: deletion and insertion areas and the randomization check,
for all images and each cell, with the cells that differ from the rest marked. Read from
``RUN/validation/cells.csv`` (written by ``saliency validate``) only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from saliency.rundir import validation_dir
from saliency.stages.figures.spec import FigureSpec
from saliency.viz.bars import interval_bars
from saliency.viz.style import paper_figure, selection_colors, selection_order

PANELS = (  # measure, axis label, which way is better
    ("deletion_auc", "deletion AUC (lower: faithful)"),
    ("insertion_auc", "insertion AUC (higher: faithful)"),
    ("spearman_abs", "Spearman of |maps|, all blocks\nre-initialized (lower: passes)"),
)


def validation_cells(run: Path, width: float) -> FigureSpec | str:
    """One panel per measure: x = methods, one bar per selection (all, then each cell) with
    its 95% interval; a star over a cell whose difference from the rest excludes zero
    simultaneously over the cells."""
    path = validation_dir(run) / "cells.csv"
    if not path.is_file():
        return f"no per-cell validation: run `saliency validate --run {run}`"
    table = pd.read_csv(path, keep_default_na=False, na_values=[""])
    if not len(table):
        return "no per-cell validation rows"
    panels = [(m, label) for m, label in PANELS if (table["measure"] == m).any()]
    methods = list(dict.fromkeys(table["method"]))
    names = selection_order(list(dict.fromkeys(table["cell"])))
    colors = selection_colors(names)
    fig = paper_figure(width, 2.5)
    axes = np.atleast_1d(fig.subplots(1, len(panels)))
    for ax, (measure, label) in zip(axes, panels, strict=True):
        t = table[table["measure"] == measure]
        bars = pd.DataFrame({"category": t["method"], "series": t["cell"], "n": np.nan,
                             "value": t["mean"], "low": t["low"], "high": t["high"]})  # fmt: skip
        interval_bars(ax, bars, methods, names, colors, label, reference=None)
        _stars(ax, t, methods, names)
    handles, labels = axes[0].get_legend_handles_labels()
    fig.legend(handles, labels, ncol=len(names), loc="outside lower center", frameon=False)
    fig.suptitle("Explanation quality per cell, 95% intervals (* differs from the other cells)")
    n = int(table.loc[table["cell"] == "all", "n"].max())
    adjustment = str(table["adjustment"].iloc[0])
    counts = "; ".join(
        f"{what} on {_counts(table, m)}"
        for what, m in (("curves", "deletion_auc"), ("randomization", "spearman_abs"))
        if (table["measure"] == m).any()
    )
    caption = (
        "Per method, for all explained images of the validation subset and each cell: the "
        "areas under the deletion and insertion curves and the Spearman correlation of the "
        "absolute maps with every block re-initialized (the randomization check), with 95% "
        f"bootstrap intervals. *: the cell's mean minus the other images' excludes zero "
        f"({adjustment}). The images are taken from the cells in turn: {counts}."
    )
    return FigureSpec("validation_cells", fig, caption, n)


def _stars(ax, t: pd.DataFrame, methods: list[str], names: list[str]) -> None:
    width = 0.8 / max(1, len(names))
    for k, name in enumerate(names):
        rows = t[t["cell"] == name].set_index("method")
        for i, m in enumerate(methods):
            if m in rows.index and str(rows.loc[m, "differs"]).lower() == "true":
                x = i + (k - (len(names) - 1) / 2) * width
                ax.annotate("*", (x, rows.loc[m, "high"]), ha="center", va="bottom",
                            fontsize=8)  # fmt: skip


def _counts(table: pd.DataFrame, measure: str) -> str:
    """``64 images (A_F 16, A_M 16, ...)`` for one measure (its first method's rows)."""
    t = table[table["measure"] == measure]
    t = t[t["method"] == t["method"].iloc[0]].set_index("cell")["n"]
    cells = ", ".join(f"{c} {int(v)}" for c, v in t.drop("all").items())
    return f"{int(t['all'])} images ({cells})"
