"""The evaluate stage: predictions and metrics per class, subgroup and cell.

Reads ``RUN/checkpoints/best.pt`` and the manifest it was trained on (or another one);
writes ``RUN/eval/<split>/`` (predictions.csv, metrics.json, group_accuracy.csv and the
confusion, ROC, reliability and training-curve figures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from saliency.analysis.metrics import chance_message, evaluation_metrics, group_table
from saliency.atomic import atomic_write_json, atomic_write_text
from saliency.data.manifest import relative_path
from saliency.models.checkpoint import load_model
from saliency.models.evaluate import evaluation_rows
from saliency.models.predict import predict_logits, predictions_frame
from saliency.rundir import best_checkpoint, eval_dir, record, require_run, train_log
from saliency.runtime import resolve_device


@dataclass
class EvaluateConfig:
    run: Path
    split: str = "test"  # train, val, test or all
    manifest: Path | None = None  # another manifest (default: the training one)
    batch_size: int = 128
    workers: int = 2
    device: str = "auto"


@dataclass
class EvaluateResult:
    out: Path
    predictions: pd.DataFrame
    metrics: dict
    table: pd.DataFrame  # accuracy per selection with Wilson intervals
    chance_warning: str | None


def _figures(out: Path, pred: pd.DataFrame, metrics: dict, classes: list[str], run: Path) -> None:
    from saliency.viz import evaluation as plots
    from saliency.viz.style import inch_margins, new_figure, save_figure

    # fixed margins in inches (tick labels, axis labels, title): no tight-bbox redraw
    fig = new_figure(3.4, 3.0)
    plots.confusion_plot(fig.add_subplot(), metrics["confusion"]["rows_true_cols_pred"], classes)
    save_figure(inch_margins(fig, 0.8, 0.55, 0.15, 0.5), out / "confusion.png", tight=False)
    fig = new_figure(3.6, 3.4)
    plots.roc_plot(fig.add_subplot(), pred, classes, metrics["roc_auc"])
    save_figure(inch_margins(fig, 0.6, 0.5, 0.15, 0.35), out / "roc.png", tight=False)
    fig = new_figure(3.4, 3.2)
    plots.reliability_plot(fig.add_subplot(), metrics["calibration"])
    save_figure(inch_margins(fig, 0.6, 0.5, 0.15, 0.35), out / "reliability.png", tight=False)
    if train_log(run).is_file():
        fig = new_figure(7.0, 2.8)
        plots.training_curves(
            fig.add_subplot(1, 2, 1), fig.add_subplot(1, 2, 2), pd.read_csv(train_log(run))
        )
        save_figure(inch_margins(fig, 0.8, 0.5, 0.15, 0.35, 0.9), out / "curves.png", tight=False)


def run(cfg: EvaluateConfig, progress: Callable[[int], None] | None = None) -> EvaluateResult:
    """Classify ``cfg.split`` with the run's best checkpoint and write its evaluation."""
    run_dir = require_run(cfg.run)
    device = resolve_device(cfg.device)
    model, pre, classes, ckpt = load_model(best_checkpoint(run_dir), device)
    rows, manifest = evaluation_rows(ckpt, cfg.split, cfg.manifest)
    logits = predict_logits(model, pre, rows["path"], cfg.batch_size, cfg.workers, progress)
    pred = predictions_frame(rows, logits, classes)
    pred["path"] = [relative_path(p, manifest.parent) for p in pred["path"]]
    metrics = evaluation_metrics(pred, classes)
    metrics["checkpoint"] = {"epoch": ckpt["epoch"], "arch": ckpt["model"]["arch"]}
    metrics["manifest"] = str(manifest)
    out = eval_dir(run_dir, cfg.split)
    atomic_write_text(out / "predictions.csv", pred.to_csv(index=False))
    atomic_write_json(out / "metrics.json", metrics)
    table = group_table(pred, classes)
    atomic_write_text(out / "group_accuracy.csv", table.to_csv(index=False))
    _figures(out, pred, metrics, classes, run_dir)
    record(
        run_dir,
        f"evaluate:{cfg.split}",
        {"split": cfg.split, "manifest": str(manifest), "batch_size": cfg.batch_size},
    )
    return EvaluateResult(out, pred, metrics, table, chance_message(metrics, cfg.split))
