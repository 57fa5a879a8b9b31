"""Publication figures of regions: ablation effects, attribution share and enrichment, and
the score distributions before and after deleting each region, per cell.

Read from ``RUN/ablation/`` and ``RUN/share/`` only.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from saliency.data.cells import cell_name
from saliency.data.regions import REGIONS
from saliency.rundir import ablation_result_dir, share_dir
from saliency.runs import Run
from saliency.stages.figures.spec import FigureSpec
from saliency.viz.ablation import score_bins, scores_panel
from saliency.viz.bars import interval_bars
from saliency.viz.style import paper_figure, selection_colors, selection_order


def _fill(run: Path) -> str | None:
    fills = Run(run).ablation_fills()
    return fills[0] if fills else None


def _bars_table(t: pd.DataFrame, value: str, scale: float = 1.0) -> pd.DataFrame:
    return pd.DataFrame({
        "category": t["region"], "series": t["selection"], "n": t["n"],
        "value": t[value] * scale, "low": t[f"{value}_low"] * scale,
        "high": t[f"{value}_high"] * scale,
    })  # fmt: skip


def ablation_effects(run: Path, cells: list[str], width: float) -> FigureSpec | str:
    """Change of accuracy and of the true class's probability when each region is deleted,
    for all images and each cell, with 95% bootstrap intervals."""
    fill = _fill(run)
    if fill is None:
        return "no delete-mode ablation: run `saliency ablate --region all`"
    files = [ablation_result_dir(run, r, fill, "delete") / "summary.csv" for r in REGIONS]
    frames = [pd.read_csv(f) for f in files if f.is_file()]
    t = pd.concat(frames, ignore_index=True)
    series = [s for s in selection_order(["all", *cells]) if s in set(t["selection"])]
    t = t[t["selection"].isin(series)]
    regions = [r for r in REGIONS if r in set(t["region"])]
    colors = selection_colors(series)
    fig = paper_figure(width, 3.6)
    top, bottom = fig.subplots(2, 1, sharex=True)
    interval_bars(top, _bars_table(t, "accuracy_change", 100), regions, series, colors,
                  "accuracy change (points)")  # fmt: skip
    interval_bars(bottom, _bars_table(t, "prob_change", 100), regions, series, colors,
                  "true-class probability\nchange (points)")  # fmt: skip
    sep = " " if width >= 5 else "\n"
    fig.suptitle(f"Deleting each region ({fill} fill):{sep}after minus before, 95% intervals")
    ncol = len(series) if width >= 5 else 3  # one column: the legend wraps
    fig.legend(*top.get_legend_handles_labels(), ncol=ncol, loc="outside lower center",
               frameon=False)  # fmt: skip
    n = int(t.loc[t["selection"] == "all", "n"].max()) if "all" in series else int(t["n"].max())
    caption = (f"Change of accuracy and of the true class's probability (percentage points) "
               f"when each region is deleted with a {fill} fill, for all test images and each "
               f"cell; bars are 95% bootstrap intervals, those of the probability "
               f"simultaneous over the regions of each selection (bootstrap max-t), the test "
               f"that names the leading region.")  # fmt: skip
    return FigureSpec("ablation_effects", fig, caption, n)


def share_enrichment(
    run: Path, methods: list[str], cells: list[str], width: float, split: str = "test"
) -> FigureSpec | str:
    """Per method (rows): share of positive attribution and enrichment (share / area) per
    region, for all images and each cell, with 95% bootstrap intervals."""
    tables = {}
    for m in methods:
        f = share_dir(run, m, split) / "summary.csv"
        if f.is_file():
            t = pd.read_csv(f, keep_default_na=False)
            tables[m] = t[t["split"] == "all"]
    if not tables:
        return "no attribution shares: run `saliency share`"
    series = selection_order(["all", *cells])
    colors = selection_colors(series)
    fig = paper_figure(width, 1.9 * len(tables) + 0.5)
    axes = fig.subplots(len(tables), 2, squeeze=False)
    n = 0
    for i, (m, t) in enumerate(tables.items()):
        t = t[t["selection"].isin(series)]
        shown = [s for s in series if s in set(t["selection"])]
        regions = [r for r in REGIONS if r in set(t["region"])]
        interval_bars(axes[i, 0], _bars_table(t, "share", 100), regions, shown, colors,
                      f"{m}: share of positive\nattribution (%)", reference=None)  # fmt: skip
        interval_bars(axes[i, 1], _bars_table(t, "enrichment"), regions, shown, colors,
                      f"{m}: enrichment\n(share / area)", log=True, reference=1.0)  # fmt: skip
        n = max(n, int(t.loc[t["selection"] == "all", "n"].max() or 0))
    fig.legend(*axes[0, 0].get_legend_handles_labels(), ncol=len(series),
               loc="outside lower center", frameon=False)  # fmt: skip
    fig.suptitle("Attribution share and enrichment per region, 95% intervals")
    caption = ("Share of each method's positive attribution in each region and enrichment "
               "(share over the region's share of the pixels; 1 = in proportion to area), "
               "for all test images and each cell, with 95% bootstrap intervals.")  # fmt: skip
    return FigureSpec("share_enrichment", fig, caption, n)


def score_distributions(run: Path, classes: list[str], width: float) -> FigureSpec | str:
    """Histograms of the true class's score before and after deleting each region (rows),
    for all images and each cell (columns), on one score axis per region; beside them (from
    each region's summary.csv, when it has them) d' before and after per subgroup and for
    all images, with 95% intervals: how far apart each group's two cells' scores lie."""
    from saliency.viz.thresholds import dprime_panel

    fill = _fill(run)
    if fill is None:
        return "no delete-mode ablation: run `saliency ablate --region all`"
    files = {r: ablation_result_dir(run, r, fill, "delete") / "per_image.csv" for r in REGIONS}
    per = {r: pd.read_csv(f, keep_default_na=False) for r, f in files.items() if f.is_file()}
    any_rows = next(iter(per.values()))
    cells = [cell_name(g, c, classes) for g, c in zip(any_rows["group"], any_rows["label"],
                                                        strict=True) if g]  # fmt: skip
    cols = selection_order(["all", *set(cells)])
    groups = selection_order(["all", *(set(any_rows["group"].astype(str)) - {""})])
    dprimes = {}
    for region in per:
        f = ablation_result_dir(run, region, fill, "delete") / "summary.csv"
        t = pd.read_csv(f, keep_default_na=False) if f.is_file() else None
        if t is not None and "dprime_before" in t.columns:
            t = t.set_index("selection").loc[lambda d: d.index.isin(groups)]
            dprimes[region] = t.apply(pd.to_numeric, errors="coerce")
    extra = int(len(dprimes) == len(per))  # a d' column only when every region has it
    fig = paper_figure(width, 1.05 * len(per) + 0.6)
    axes = fig.subplots(len(per), len(cols) + extra, squeeze=False,
                        width_ratios=[1] * len(cols) + [1.25] * extra)  # fmt: skip
    for i, (region, rows) in enumerate(per.items()):
        rows = rows.assign(cell=[cell_name(g, c, classes) if g else "" for g, c in
                                 zip(rows["group"], rows["label"], strict=True)])  # fmt: skip
        bins = score_bins(rows, 24)
        for j, c in enumerate(cols):
            sub = rows if c == "all" else rows[rows["cell"] == c]
            ax = axes[i, j]
            if j:
                ax.sharex(axes[i, 0])
            scores_panel(ax, sub, bins, f"{c} (n = {len(sub)})" if i == 0 else f"n = {len(sub)}")
            # (the title names the score: a long label would run into the next column's)
            ax.set_xlabel(("score (logit)" if extra else "true-class score (logit)")
                          if i == len(per) - 1 else "")  # fmt: skip
            ax.xaxis.set_major_locator(MaxNLocator(4, integer=True))
            ax.yaxis.set_major_locator(MaxNLocator(3, integer=True))
            if j == 0:
                ax.set_ylabel(f"{region}\nimages")
        if extra:
            ax = axes[i, -1]
            if i:
                ax.sharex(axes[0, -1])
            dprime_panel(ax, dprimes[region], groups)
            ax.set_xlabel(f"d\u2032 of the {classes[1]} logit" if i == len(per) - 1 else "")
            ax.xaxis.set_major_locator(MaxNLocator(4))
            if i == 0:
                ax.set_title("d\u2032 before\u2192after")
    fig.suptitle(f"True-class score before and after deleting each region ({fill} fill)")
    fig.legend(*axes[0, 0].get_legend_handles_labels(), ncol=2, loc="outside lower center",
               frameon=False)  # fmt: skip
    n = int(np.max([len(r) for r in per.values()]))
    caption = (f"Histograms of the true class's score (logit) before and after deleting each "
               f"region with a {fill} fill, for all test images and each cell.")  # fmt: skip
    if extra:
        caption += (f" Right: decidability d\u2032 = (mean_1 - mean_0) / sqrt((var_0 + var_1) "
                    f"/ 2) of the log-odds of {classes[1]}, between a subgroup's two cells "
                    f"(and over all images), before (open) and after (filled) the deletion, "
                    f"with 95% bootstrap intervals resampling images within each class; its "
                    f"change has a paired interval in the ablation's summary.")  # fmt: skip
    return FigureSpec("score_distributions", fig, caption, n)
