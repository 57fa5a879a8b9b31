"""Evaluation figures: confusion matrix, ROC per subgroup, reliability, training curves."""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.axes import Axes
from matplotlib.ticker import MaxNLocator

from saliency.analysis.metrics import roc_curve


def confusion_plot(ax: Axes, matrix: list[list[int]], classes: list[str]) -> Axes:
    m = np.asarray(matrix)
    frac = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    ax.imshow(frac, cmap="Blues", vmin=0, vmax=1)
    for (i, j), v in np.ndenumerate(m):
        ax.text(
            j,
            i,
            f"{v}\n{frac[i, j]:.1%}",
            ha="center",
            va="center",
            color="white" if frac[i, j] > 0.6 else "black",
        )
    ax.set_xticks(range(len(classes)), classes)
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title("confusion matrix\n(row-normalized)")
    return ax


def roc_plot(ax: Axes, pred: pd.DataFrame, classes: list[str], aucs: dict) -> Axes:
    """ROC of ``prob_<classes[1]>`` for everyone and per subgroup."""
    positive = (pred["label"] == classes[1]).to_numpy()
    score = pred[f"prob_{classes[1]}"].to_numpy(float)
    curves = [("all", np.ones(len(pred), bool), aucs.get("all"))]
    curves += [(g, (pred["group"] == g).to_numpy(), a) for g, a in aucs["by_group"].items()]
    for name, sel, auc in curves:
        if auc is None:
            continue
        fpr, tpr = roc_curve(score[sel], positive[sel])
        ax.plot(fpr, tpr, lw=1.6 if name == "all" else 1.0, label=f"{name} (AUC {auc:.3f})")
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    ax.set_xlabel(f"false positive rate ({classes[1]})")
    ax.set_ylabel("true positive rate")
    ax.set_title("ROC per subgroup")
    ax.legend(loc="lower right", fontsize=7)
    return ax


def reliability_plot(ax: Axes, calibration: dict) -> Axes:
    bins = calibration["bins"]
    conf = [b["confidence"] for b in bins]
    acc = [b["accuracy"] for b in bins]
    ax.plot([0, 1], [0, 1], color="0.7", lw=0.8, ls="--")
    ax.plot(conf, acc, marker="o", ms=3)
    for b in bins:
        ax.annotate(
            str(b["n"]),
            (b["confidence"], b["accuracy"]),
            fontsize=6,
            textcoords="offset points",
            xytext=(2, -8),
        )
    ax.set_xlim(0.45, 1.0)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("confidence")
    ax.set_ylabel("accuracy")
    ax.set_title(f"reliability (ECE {calibration['ece']:.3f})")
    return ax


def training_curves(ax_loss: Axes, ax_acc: Axes, log: pd.DataFrame) -> None:
    for split in ("train", "val"):
        ax_loss.plot(log["epoch"], log[f"{split}_loss"], marker="o", ms=3, label=split)
        ax_acc.plot(log["epoch"], log[f"{split}_accuracy"], marker="o", ms=3, label=split)
    best = log.loc[log["val_loss"].idxmin()]
    for ax in (ax_loss, ax_acc):
        ax.axvline(best["epoch"], color="0.6", lw=0.8, ls=":")
        ax.set_xlabel("epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        ax.legend(fontsize=7)
    ax_loss.set_ylabel("loss")
    ax_acc.set_ylabel("accuracy")
    ax_loss.set_title("training curves (dotted: best val loss)")
