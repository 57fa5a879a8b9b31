"""The evaluate stage: predictions and metrics per class, subgroup and cell.

Reads ``RUN/checkpoints/best.pt`` and the manifest it was trained on (or another one);
writes ``RUN/eval/<split>/`` (predictions.csv, metrics.json, group_accuracy.csv and the
confusion, ROC, reliability and training-curve figures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.analysis.metrics import chance_message, evaluation_metrics, group_table
from saliency.atomic import atomic_write_json, atomic_write_text
from saliency.configs.model import EvaluateConfig
from saliency.data.manifest import relative_path
from saliency.distributed import World
from saliency.models.checkpoint import file_sha256, load_model
from saliency.models.evaluate import evaluation_rows
from saliency.models.predict import logits_stream, predictions_frame
from saliency.parts import Gathered, gather, key_of
from saliency.rundir import best_checkpoint, eval_dir, record, require_run, train_log
from saliency.runtime import resolve_device
from saliency.stages.contract import Result, StageContext


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


def run(
    cfg: EvaluateConfig,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    world: World | None = None,
) -> dict[str, EvaluateResult]:
    """Evaluate each of ``cfg.splits``; ``progress(name, total)`` makes a counter per split.
    Under torchrun (``world``) the ranks share each split's images and rank 0 writes (the
    others get an empty dict)."""
    out = {}
    for s in cfg.splits:
        res = evaluate_split(cfg, s, progress(f"evaluate {s}", 0) if progress else None, world)
        if res is not None:
            out[s] = res
    return out


def _logits(
    model, pre, rows: pd.DataFrame, cfg: EvaluateConfig, folder: Path, ckpt_path: Path,
    progress: Callable[[int], None] | None, world: World,
) -> Gathered | None:  # fmt: skip
    """The logits of ``rows`` (``float32 [N, n_outputs]``, under ``"logits"``), sharded over
    the ranks (:func:`saliency.parts.gather`); ``None`` on ranks other than 0."""
    paths = rows["path"].tolist()

    def compute(todo: np.ndarray, sink) -> None:
        for r, z in logits_stream(model, pre, paths, todo, cfg.batch_size, cfg.workers):
            sink.add(r, logits=z)
            if progress is not None:
                progress(len(r))

    key = lambda: key_of("evaluate", file_sha256(ckpt_path), paths)  # noqa: E731
    return gather(folder, key, paths, world.rank, world.size, compute)


def evaluate_split(
    cfg: EvaluateConfig,
    split: str,
    progress: Callable[[int], None] | None = None,
    world: World | None = None,
) -> EvaluateResult | None:
    """Classify ``split`` with the run's best checkpoint and write its evaluation (rank 0;
    ``None`` on the other ranks under torchrun)."""
    world = world or World()
    run_dir = require_run(cfg.run)
    device = resolve_device(cfg.device)
    ckpt_path = best_checkpoint(run_dir)
    model, pre, classes, ckpt = load_model(ckpt_path, device)
    rows, manifest = evaluation_rows(ckpt, split, cfg.manifest)
    out = eval_dir(run_dir, split)
    got = _logits(model, pre, rows, cfg, out, ckpt_path, progress, world)
    if got is None:
        return None
    pred = predictions_frame(rows, got.arrays["logits"], classes)
    pred["path"] = [relative_path(p, manifest.parent) for p in pred["path"]]
    metrics = evaluation_metrics(pred, classes)
    metrics["checkpoint"] = {"epoch": ckpt.epoch, "arch": ckpt.arch}
    metrics["manifest"] = str(manifest)
    atomic_write_text(out / "predictions.csv", pred.to_csv(index=False))
    atomic_write_json(out / "metrics.json", metrics)
    table = group_table(pred, classes)
    atomic_write_text(out / "group_accuracy.csv", table.to_csv(index=False))
    _figures(out, pred, metrics, classes, run_dir)
    record(
        run_dir,
        f"evaluate:{split}",
        {"split": split, "manifest": str(manifest), "batch_size": cfg.batch_size},
    )
    got.clear()
    return EvaluateResult(out, pred, metrics, table, chance_message(metrics, split))


def table_lines(table: pd.DataFrame, metrics: dict) -> list[str]:
    """Accuracy per selection with its interval, and the hardest cell's gap, as text."""
    out = [f"{'selection':>14s} {'n':>6s} {'accuracy':>9s}   95% CI"]
    for r in table.itertuples():
        acc = "-" if r.accuracy is None or pd.isna(r.accuracy) else f"{r.accuracy:.1%}"
        ci = "" if pd.isna(r.ci_low) else f"[{r.ci_low:.1%}, {r.ci_high:.1%}]"
        out.append(f"{r.selection:>14s} {r.n:6d} {acc:>9s}   {ci}")
    hard = metrics["hardest_cell"]
    if hard:
        gap = next(g for g in metrics["gaps"] if g["a"] == hard and g["b"] == "rest")
        if gap["difference"] is not None:
            verdict = "excludes 0: the gap is real" if gap["excludes_zero"] else "includes 0"
            out.append(
                f"hardest cell {hard}: {gap['difference']:+.1%} vs the rest, 95% CI "
                f"[{gap['ci'][0]:+.1%}, {gap['ci'][1]:+.1%}] ({verdict})"
            )
    return out


def lines(res: EvaluateResult, split: str) -> list[str]:
    """What the command prints for one split: the headline, the table, the chance warning."""
    m = res.metrics
    out = [
        f"{split}: {len(res.predictions)} images, loss {m['loss']:.4f}, ROC AUC "
        f"{m['roc_auc']['all'] or float('nan'):.3f}, ECE {m['calibration']['ece']:.3f} "
        f"-> {res.out}"
    ]
    out += table_lines(res.table, m)
    return out + ([f"warning: {res.chance_warning}"] if res.chance_warning else [])


def run_stage(cfg: EvaluateConfig, ctx: StageContext) -> Result:
    """The stage contract: every split of ``cfg`` on the context's run."""
    res = run(ctx.fill(cfg), ctx.progress, ctx.world())
    return Result(res, [line for s, r in res.items() for line in lines(r, s)])
