"""The region x cell matrix: the ablation effect of every region on every cell at a glance,
with the family-wise verdict marked. Read from ``RUN/ablation/cells_<fill>_delete.csv``
(written by ``saliency ablate``) only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from saliency.data.regions import REGIONS
from saliency.rundir import ablation_dir
from saliency.stages.figures.spec import FigureSpec
from saliency.viz.matrix import effect_matrix
from saliency.viz.style import paper_figure, selection_order


def cells_table(run: Path) -> tuple[pd.DataFrame, str] | None:
    """The region x cell table of the first fill with one (blur first) and that fill."""
    found = sorted(ablation_dir(run).glob("cells_*_delete.csv"))
    found.sort(key=lambda p: (p.name != "cells_blur_delete.csv", p.name))
    if not found:
        return None
    return pd.read_csv(found[0], keep_default_na=False), found[0].name.split("_")[1]


def region_cell_matrix(run: Path, width: float) -> FigureSpec | str:
    """Regions (rows) x all images and each cell (columns), coloured by the mean drop of
    the true class's probability on deletion; bold and framed where the simultaneous 95%
    interval excludes zero."""
    got = cells_table(run)
    if got is None:
        return f"no region x cell table: run `saliency ablate --run {run}`"
    table, fill = got
    table["marked"] = table["marked"].astype(str).str.lower() == "true"
    columns = selection_order(list(dict.fromkeys(table["selection"])))
    regions = [r for r in REGIONS if r in set(table["region"])]
    fig = paper_figure(width, 0.32 * len(regions) + 1.0)
    ax = fig.subplots()
    image = effect_matrix(ax, table, regions, columns, "")
    ax.axvline(0.5, color="white", linewidth=2.5)  # "all" apart from the cells
    bar = fig.colorbar(image, ax=ax, shrink=0.9, pad=0.02)
    bar.set_label("drop of the true class's probability")
    n = int(table.loc[table["selection"] == "all", "n"].max())
    counts = table.drop_duplicates("selection").set_index("selection")["n"]
    ax.set_xticks(range(len(columns)),
                  [f"{c}\n(n = {int(counts[c])})" for c in columns])  # fmt: skip
    fig.suptitle(f"Deleting each region ({fill} fill): effect per cell")
    family = int(table.loc[table["selection"] != "all", "family"].max() or 0)
    caption = (
        f"Mean drop of the true class's probability when each region is deleted ({fill} "
        f"fill), for all {n} test images and each cell. Bold and framed: the 95% interval "
        f"excludes zero simultaneously over the {family} region x cell effects (bootstrap "
        "max-t; the all-images column over the regions alone), so a marked square is not "
        "one of many comparisons that stands out by chance."
    )
    return FigureSpec("region_cell_matrix", fig, caption, n)
