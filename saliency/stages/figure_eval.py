"""Publication figures of the evaluation: training curves, confusion, ROC per subgroup,
reliability and accuracy per selection; read from ``RUN/eval/<split>/`` and the log."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from saliency.rundir import eval_dir, train_log
from saliency.stages.figure_maps import FigureSpec
from saliency.viz import evaluation as plots
from saliency.viz.bars import interval_bars
from saliency.viz.style import paper_figure, selection_colors


def evaluation(run: Path, split: str, width: float) -> FigureSpec | str:
    """Six panels: loss and accuracy per epoch, confusion matrix, ROC per subgroup,
    reliability, and accuracy per selection with 95% Wilson intervals."""
    folder = eval_dir(run, split)
    if not (folder / "metrics.json").is_file():
        return f"no evaluation of {split}: run `saliency evaluate --split {split}`"
    metrics = json.loads((folder / "metrics.json").read_text())
    pred = pd.read_csv(folder / "predictions.csv", keep_default_na=False)
    groups = pd.read_csv(folder / "group_accuracy.csv", keep_default_na=False)
    classes = metrics["classes"]
    fig = paper_figure(width, width * 0.62)
    axes = fig.subplots(2, 3)
    if train_log(run).is_file():
        plots.training_curves(axes[0, 0], axes[0, 1], pd.read_csv(train_log(run)))
        axes[0, 0].set_title("loss per epoch (dotted: best)")
        axes[0, 1].set_title("accuracy per epoch")
    else:
        for ax in axes[0, :2]:
            ax.text(0.5, 0.5, "no training log (adopted model)", ha="center", va="center",
                    transform=ax.transAxes)  # fmt: skip
            ax.set_axis_off()
    plots.confusion_plot(axes[0, 2], metrics["confusion"]["rows_true_cols_pred"], classes)
    plots.roc_plot(axes[1, 0], pred, classes, metrics["roc_auc"])
    plots.reliability_plot(axes[1, 1], metrics["calibration"])
    table = pd.DataFrame({
        "category": groups["selection"], "series": "accuracy", "n": groups["n"],
        "value": 100 * groups["accuracy"], "low": 100 * groups["ci_low"],
        "high": 100 * groups["ci_high"],
    })  # fmt: skip
    ax = interval_bars(axes[1, 2], table, list(groups["selection"]), ["accuracy"],
                       selection_colors(["accuracy"]), "accuracy (%)", reference=None)  # fmt: skip
    chance = (metrics.get("chance") or {}).get("level")
    if chance:
        ax.axhline(100 * chance, color="0.4", linewidth=0.6, linestyle=":")
    ax.set_ylim(0, 105)
    ax.tick_params(axis="x", labelrotation=90)
    ax.set_title("accuracy, 95% Wilson intervals\n(dotted: chance)")
    fig.suptitle(f"Evaluation on the {split} split (n = {metrics['n']})")
    caption = (f"Training curves, confusion matrix, ROC per subgroup, reliability and accuracy "
               f"per class, subgroup and cell on the {split} split.")  # fmt: skip
    return FigureSpec("evaluation", fig, caption, int(metrics["n"]))
