"""Publication figures of the evaluation: training curves, confusion, ROC per subgroup,
reliability and accuracy per selection; read from ``RUN/eval/<split>/`` and the log."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from saliency.rundir import eval_dir, train_log
from saliency.stages.figures.spec import FigureSpec
from saliency.viz import evaluation as plots
from saliency.viz.bars import interval_bars
from saliency.viz.style import paper_figure, selection_colors


def evaluation(run: Path, split: str, width: float) -> FigureSpec | str:
    """Six panels (four for an adopted model, which has no training log): loss and
    accuracy per epoch, confusion matrix, ROC per subgroup,
    reliability, and accuracy per selection with 95% Wilson intervals."""
    folder = eval_dir(run, split)
    if not (folder / "metrics.json").is_file():
        return f"no evaluation of {split}: run `saliency evaluate --split {split}`"
    metrics = json.loads((folder / "metrics.json").read_text())
    pred = pd.read_csv(folder / "predictions.csv", keep_default_na=False)
    groups = pd.read_csv(folder / "group_accuracy.csv", keep_default_na=False)
    classes = metrics["classes"]
    logged = train_log(run).is_file()  # an adopted model has no training log: four panels
    fig = paper_figure(width, width * (0.62 if logged else 0.7))
    if logged:
        axes = fig.subplots(2, 3)
        plots.training_curves(axes[0, 0], axes[0, 1], pd.read_csv(train_log(run)))
        axes[0, 0].set_title("loss per epoch (dotted: best)")
        axes[0, 1].set_title("accuracy per epoch")
        confusion, roc, reliability, bars = axes[0, 2], axes[1, 0], axes[1, 1], axes[1, 2]
    else:
        (confusion, roc), (reliability, bars) = fig.subplots(2, 2)
    plots.confusion_plot(confusion, metrics["confusion"]["rows_true_cols_pred"], classes)
    plots.roc_plot(roc, pred, classes, metrics["roc_auc"])
    plots.reliability_plot(reliability, metrics["calibration"])
    table = pd.DataFrame({
        "category": groups["selection"], "series": "accuracy", "n": groups["n"],
        "value": 100 * groups["accuracy"], "low": 100 * groups["ci_low"],
        "high": 100 * groups["ci_high"],
    })  # fmt: skip
    ax = interval_bars(bars, table, list(groups["selection"]), ["accuracy"],
                       selection_colors(["accuracy"]), "accuracy (%)", reference=None)  # fmt: skip
    chance = (metrics.get("chance") or {}).get("level")
    if chance:
        ax.axhline(100 * chance, color="0.4", linewidth=0.6, linestyle=":")
    ax.set_ylim(0, 105)
    ax.tick_params(axis="x", labelrotation=90)
    ax.set_title("accuracy, 95% Wilson intervals\n(dotted: chance)")
    fig.suptitle(f"Evaluation on the {split} split (n = {metrics['n']})")
    first = "Training curves, confusion matrix" if logged else "Confusion matrix"
    caption = (f"{first}, ROC per subgroup, reliability and accuracy per class, subgroup and "
               f"cell on the {split} split.")  # fmt: skip
    return FigureSpec("evaluation", fig, caption, int(metrics["n"]))
