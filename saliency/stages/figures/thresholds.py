"""Publication figure of error rates per group as the decision threshold moves.

Read from ``RUN/eval/<split>/`` only: the scores in predictions.csv, the classes in
metrics.json and the operating threshold and its rates in threshold_errors.csv.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.analysis.separability import class1_log_odds
from saliency.analysis.thresholds import error_curves, gap_curves
from saliency.data.cells import cell_name
from saliency.rundir import eval_dir
from saliency.stages.figures.spec import FigureSpec
from saliency.viz.style import ALL_COLOR, paper_figure, selection_colors
from saliency.viz.thresholds import rate_panel

# a legend box without an edge: the lines behind it do not run through its text
LEGEND = {"frameon": True, "edgecolor": "none", "facecolor": "white", "framealpha": 0.85}


def threshold_errors(run: Path, split: str, width: float, span: float = 4.0) -> FigureSpec | str:
    """Each class's error rate within each subgroup (and over all images) as the threshold
    on the log-odds of ``classes[1]`` moves over ``[-span, span]``, with pointwise 95%
    Wilson bands and the operating threshold's rates (threshold_errors.csv) as dots; and the
    gaps between subgroups for each class, with Newcombe bands. Panels side by side on a
    two-column page, stacked on one column."""
    folder = eval_dir(run, split)
    table = folder / "threshold_errors.csv"
    if not table.is_file():
        return f"no threshold error rates of {split}: run `saliency evaluate --split {split}`"
    classes = json.loads((folder / "metrics.json").read_text())["classes"]
    pred = pd.read_csv(folder / "predictions.csv", keep_default_na=False)
    at = pd.read_csv(table, keep_default_na=False)
    rates = at[at["kind"] == "error_rate"]
    operating = float(rates["threshold"].iloc[0])
    scores = class1_log_odds(pred, classes)
    positive = (pred["label"] == classes[1]).to_numpy()
    groups = pred["group"].astype(str).to_numpy()
    thresholds = np.union1d(np.linspace(-span, span, 161), [operating])
    curves = error_curves(scores, positive, groups, thresholds)
    gaps = gap_curves(curves)
    present = sorted(set(groups) - {""})
    cells = {(g, k): cell_name(g, c, classes) for g in present for k, c in enumerate(classes)}
    colors = selection_colors(["all", *cells.values()])
    stacked = width < 5
    fig = paper_figure(width, 5.6 if stacked else 2.5)
    axes = fig.subplots(3, 1, sharex=True) if stacked else fig.subplots(1, 3, sharex=True)
    for k, c in enumerate(classes):
        other = classes[1 - k]
        shown = []
        for g in ["all", *present]:
            v = curves[(g, k)]
            if not v["n"]:
                continue
            name = f"all {c}" if g == "all" else cells[(g, k)]
            shown.append({"label": f"{name} (n = {v['n']})", "color": colors.get(cells.get(
                (g, k)), ALL_COLOR), "value": 100 * v["rate"], "low": 100 * v["low"],
                "high": 100 * v["high"]})  # fmt: skip
        ax = rate_panel(axes[k], thresholds, shown, operating, f"{c} called {other} (%)")
        for r in rates[(rates["class"] == c) & (rates["n"] > 0)].itertuples():
            color = ALL_COLOR if r.group == "all" else colors[cells[(r.group, k)]]
            ax.plot([r.threshold], [100 * r.value], "o", ms=3, color=color, zorder=3)
        ax.set_ylim(-2, 102)
        ax.set_title(f"error rate of {c}")
        ax.legend(**LEGEND, loc="best")
    shown = []
    for (a, b, k), v in gaps.items():
        shown.append(
            {
                "label": f"{cells[(a, k)]} \u2212 {cells[(b, k)]}",
                "value": 100 * v["value"],
                "low": 100 * v["low"],
                "high": 100 * v["high"],
                "color": colors[cells[(a, k)]],
                "linestyle": "-" if k == 0 else "--",
            }
        )
    ax = rate_panel(axes[2], thresholds, shown, operating, "difference of error rates (points)",
                    reference=0.0)  # fmt: skip
    ax.set_title("gap between subgroups")
    if shown:
        ax.legend(**LEGEND, loc="best")
    else:
        ax.text(0.5, 0.5, "fewer than two subgroups: no gaps", transform=ax.transAxes, ha="center")
    for ax in axes[-1:] if stacked else axes:
        ax.set_xlabel(f"threshold on the logit of {classes[1]}")
    p = 1 / (1 + math.exp(-operating))
    sep = "\n" if stacked else " "
    fig.suptitle(f"Error rates as the threshold moves{sep}({split}; dashed: operating "
                 f"threshold, logit {operating:g} = probability {p:.2g})")  # fmt: skip
    caption = (f"Each class's error rate within each subgroup (and over all images) on the "
               f"{split} split, as the threshold on the log-odds of {classes[1]} moves from "
               f"{-span:g} to {span:g}, with pointwise 95% Wilson bands; the dashed line is the "
               f"operating threshold (logit {operating:g}, probability {p:.2g}), where the dots "
               f"are the rates of threshold_errors.csv. Right: the "
               f"difference between two subgroups' error rates for the same class (solid: "
               f"{classes[0]}, dashed: {classes[1]}), with Newcombe bands. One ROC per group "
               f"hides what a fixed threshold does to each group (Krishnapriya et al. "
               f"2019).")  # fmt: skip
    return FigureSpec("threshold_errors", fig, caption, len(pred))
