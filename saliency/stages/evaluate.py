"""The evaluate stage: predictions and metrics per class, subgroup and cell.

Reads ``RUN/checkpoints/best.pt`` and the run's images; writes ``RUN/eval/<split>/``
(predictions.csv, metrics.json, group_accuracy.csv, separability.csv: d' per subgroup,
threshold_errors.csv: each class's error rate per subgroup at the operating threshold and
the gaps between subgroups, and the confusion, ROC, reliability and training-curve
figures). A run that names no images (an adopted model without
``--manifest``) takes ``--manifest`` as its images, recorded in ``RUN/images.json``. Another
data set (train on one, test on another) is a named set: ``--manifest OTHER --name NAME``
writes the same files to ``RUN/eval/NAME/`` from the ``--split`` rows of OTHER (rows without
a split count as test, so a foreign data set is all test); without ``--name`` it is refused,
never written over ``RUN/eval/<split>/``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.analysis.metrics import chance_message, evaluation_metrics, group_table
from saliency.atomic import atomic_write_json, atomic_write_text
from saliency.configs.model import EvaluateConfig
from saliency.data.manifest import SPLITS, relative_path
from saliency.distributed import World
from saliency.models.checkpoint import file_sha256, load_model
from saliency.models.evaluate import evaluation_rows, record_images, run_images, same_manifest
from saliency.models.predict import logits_stream, predictions_frame
from saliency.parts import Gathered, gather, key_of
from saliency.rundir import best_checkpoint, eval_dir, record, require_run, train_log
from saliency.runtime import resolve_device
from saliency.stages.contract import Result, StageContext

# not a set's name: the split folders, and the analysis commands' outcome selections
RESERVED = (*SPLITS, "all", "correct", "incorrect")
SAFE_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


@dataclass
class EvaluateResult:
    out: Path
    predictions: pd.DataFrame
    metrics: dict
    table: pd.DataFrame  # accuracy per selection with Wilson intervals
    chance_warning: str | None
    separability: pd.DataFrame | None = None  # d' per subgroup and overall (two classes)
    threshold_errors: pd.DataFrame | None = None  # error rates and gaps at the threshold


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


def check_name(name: str) -> str:
    """``name`` if it can name an evaluation set (a folder under ``RUN/eval/``); else a
    ValueError that says what a name may be."""
    if name in RESERVED:
        raise ValueError(
            f"--name {name}: that names a split or selection; name the data set instead "
            f"(e.g. morph), not one of {', '.join(RESERVED)}"
        )
    if not SAFE_NAME.fullmatch(name) or name.endswith("."):
        raise ValueError(
            f"--name {name!r}: use up to 64 letters, digits, '_', '-' or '.', starting with a "
            "letter or digit (it names the folder RUN/eval/NAME/)"
        )
    return name


def evaluation_sets(cfg: EvaluateConfig, run_dir: Path, images: str | None) -> dict[str, str]:
    """Folder under ``RUN/eval/`` -> split of the rows it evaluates, for ``cfg`` on a run
    whose images are the manifest ``images`` (None: it names none yet). A ValueError for a
    bad ``--name``, or another manifest without one (it would replace ``eval/<split>/``)."""
    if cfg.name is None:
        if cfg.manifest is not None and images is not None:
            if not same_manifest(cfg.manifest, images):
                raise ValueError(
                    f"{run_dir}'s images are {images}; to evaluate {cfg.manifest} as another "
                    f"data set, pass --name NAME (it writes {eval_dir(run_dir)}/NAME/)"
                )
        return {s: s for s in cfg.splits}
    check_name(cfg.name)
    if cfg.manifest is None:
        raise ValueError(f"--name {cfg.name} names another data set: pass its --manifest too")
    if len(cfg.splits) != 1:
        raise ValueError(
            f"--name {cfg.name} writes one folder: give one --split (or --split all), not "
            f"{', '.join(cfg.splits)}"
        )
    metrics = eval_dir(run_dir, cfg.name) / "metrics.json"
    if metrics.is_file():
        held = json.loads(metrics.read_text()).get("manifest")
        if not same_manifest(cfg.manifest, held):
            raise ValueError(
                f"{metrics.parent} holds an evaluation of {held}: choose another --name, or "
                "remove that folder"
            )
    return {cfg.name: cfg.splits[0]}


def run(
    cfg: EvaluateConfig,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    world: World | None = None,
) -> dict[str, EvaluateResult]:
    """Evaluate each of ``cfg.splits`` (or, with ``cfg.name``, the named set); returns the
    results by folder name. ``progress(name, total)`` makes a counter per folder. Under
    torchrun (``world``) the ranks share each folder's images and rank 0 writes (the others
    get an empty dict). The first ``--manifest`` of a run that names no images becomes its
    images (``RUN/images.json``, written by rank 0 once evaluated)."""
    world = world or World()
    if cfg.name is not None:
        check_name(cfg.name)
    run_dir = require_run(cfg.run)
    ckpt_path = best_checkpoint(run_dir)
    loaded = load_model(ckpt_path, resolve_device(cfg.device))
    images = run_images(loaded[3], run_dir).manifest
    sets = evaluation_sets(cfg, run_dir, images)
    out = {}
    for folder, split in sets.items():
        step = progress(f"evaluate {folder}", 0) if progress else None
        res = _evaluate(cfg, loaded, run_dir, ckpt_path, folder, split, step, world)
        if res is not None:
            out[folder] = res
    if images is None and cfg.manifest is not None and cfg.name is None and out:
        record_images(run_dir, cfg.manifest, "evaluate")
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


def _evaluate(
    cfg: EvaluateConfig, loaded: tuple, run_dir: Path, ckpt_path: Path, folder: str,
    split: str, progress: Callable[[int], None] | None, world: World,
) -> EvaluateResult | None:  # fmt: skip
    """Classify the ``split`` rows (of ``cfg.manifest`` or the run's images) with the loaded
    model and write ``RUN/eval/<folder>/`` (rank 0; ``None`` on the other ranks)."""
    model, pre, classes, ckpt = loaded
    rows, manifest = evaluation_rows(ckpt, split, cfg.manifest, run_dir)
    out = eval_dir(run_dir, folder)
    got = _logits(model, pre, rows, cfg, out, ckpt_path, progress, world)
    if got is None:
        return None
    pred = predictions_frame(rows, got.arrays["logits"], classes)
    pred["path"] = [relative_path(p, manifest.parent) for p in pred["path"]]
    metrics = evaluation_metrics(pred, classes)
    metrics["checkpoint"] = {"epoch": ckpt.epoch, "arch": ckpt.arch}
    metrics["manifest"] = str(manifest.absolute())
    if folder != split:
        metrics["set"] = {"name": folder, "split": split}
    atomic_write_text(out / "predictions.csv", pred.to_csv(index=False))
    atomic_write_json(out / "metrics.json", metrics)
    table = group_table(pred, classes)
    atomic_write_text(out / "group_accuracy.csv", table.to_csv(index=False))
    sep, thr = score_tables(pred, classes)
    if sep is not None:
        atomic_write_text(out / "separability.csv", sep.to_csv(index=False))
        atomic_write_text(out / "threshold_errors.csv", thr.to_csv(index=False))
    _figures(out, pred, metrics, classes, run_dir)
    config = {"split": split, "manifest": str(manifest.absolute()), "batch_size": cfg.batch_size}
    if folder != split:
        config = {"name": folder, **config, "sha256": file_sha256(manifest)}
    record(run_dir, f"evaluate:{folder}", config)
    got.clear()
    return EvaluateResult(out, pred, metrics, table, chance_message(metrics, folder), sep, thr)


def score_tables(
    pred: pd.DataFrame, classes: list[str]
) -> tuple[pd.DataFrame, pd.DataFrame] | tuple[None, None]:
    """``separability.csv`` (d' of the log-odds of ``classes[1]`` per subgroup and overall,
    stratified bootstrap intervals) and ``threshold_errors.csv`` (each class's error rate per
    subgroup at the operating threshold, Wilson intervals, and the gaps between subgroups,
    Newcombe intervals) of a predictions frame; ``(None, None)`` unless two classes."""
    from saliency.analysis.separability import class1_log_odds, separability_rows
    from saliency.analysis.thresholds import threshold_rows
    from saliency.data.cells import cell_name

    if len(classes) != 2:
        return None, None
    scores = class1_log_odds(pred, classes)
    positive = (pred["label"] == classes[1]).to_numpy()
    groups = pred["group"].fillna("").astype(str).to_numpy()
    cells = {(g, k): cell_name(g, c, classes) for g in set(groups) - {""}
             for k, c in enumerate(classes)}  # fmt: skip
    sep = pd.DataFrame(separability_rows(scores, positive, groups, classes))
    thr = pd.DataFrame(threshold_rows(scores, positive, groups, classes, cells))
    return sep, thr.astype({"n_versus": "Int64", "errors_versus": "Int64"})


def score_lines(sep: pd.DataFrame, thr: pd.DataFrame) -> list[str]:
    """One line per selection (all, each subgroup): d' with its interval and each class's
    error rate at the operating threshold."""
    rates = thr[thr["kind"] == "error_rate"]
    t = float(rates["threshold"].iloc[0]) if len(rates) else 0.0
    out = [f"d' of the {sep['class_1'].iloc[0]} logit between the classes and each class's "
           f"error rate at logit {t:g} (95% intervals):"]  # fmt: skip
    for r in sep.itertuples():
        d = "-" if pd.isna(r.dprime) else f"{r.dprime:.2f}"
        ci = "" if pd.isna(r.ci_low) else f" [{r.ci_low:.2f}, {r.ci_high:.2f}]"
        errs = [
            f"{e.selection} {e.value:.1%} [{e.ci_low:.1%}, {e.ci_high:.1%}]"
            for e in rates[rates["group"] == r.selection].itertuples()
            if e.n
        ]
        out.append(f"{r.selection:>14s} d' {d}{ci}; errors: {', '.join(errs)}")
    return out


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
    """What the command prints for one split (or named set): the headline, the table, the
    chance warning."""
    m = res.metrics
    if "set" in m:
        split = f"{split} ({m['set']['split']} rows of {m['manifest']})"
    out = [
        f"{split}: {len(res.predictions)} images, loss {m['loss']:.4f}, ROC AUC "
        f"{m['roc_auc']['all'] or float('nan'):.3f}, ECE {m['calibration']['ece']:.3f} "
        f"-> {res.out}"
    ]
    out += table_lines(res.table, m)
    if res.separability is not None:
        out += score_lines(res.separability, res.threshold_errors)
    return out + ([f"warning: {res.chance_warning}"] if res.chance_warning else [])


def run_stage(cfg: EvaluateConfig, ctx: StageContext) -> Result:
    """The stage contract: every split of ``cfg`` (or its named set) on the context's run."""
    res = run(ctx.fill(cfg), ctx.progress, ctx.world())
    return Result(res, [line for s, r in res.items() for line in lines(r, s)])
