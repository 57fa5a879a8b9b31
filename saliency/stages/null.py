"""The null stage: the run's own recipe trained on shuffled labels, explained like the run.

Writes ``RUN/null/`` (and with ``--seeds K``, K - 1 more under ``RUN/nulls/seed<S>/``, one
per permutation seed S after ``--seed``), each a run of its own: ``manifest.csv`` (the run's
images and splits, with the train and val labels permuted within each split by a seeded
draw; test and unused rows keep their labels, so the null's evaluation reads as the run's
does), ``null.json`` (the seed and how many labels the permutation changed), checkpoints and
``train_log.csv``, and ``saliency/<split>/<method>/`` for every split and method the run
explained, with the run's explain settings and, image by image, the target classes of the
run's own maps. This is Adebayo et al.'s data randomization;
:mod:`saliency.analysis.recovered` compares the run's attribution shares with these maps'
(DESIGN.md, "What recovered means").

Why K nulls: a finite permutation leaves a little real association between images and
labels, which a network that memorizes can learn; each seed leaves a different one. The
lift is judged against the average of the K nulls with their spread in its interval, and
the nulls' own verdict (validate) is the pooled nulls' (:mod:`saliency.analysis.recovered`).

Every step resumes: the manifest is rebuilt byte for byte, training continues from
``RUN/null/checkpoints/last.pt``, explanation from its progress files.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.atomic import atomic_write_json
from saliency.configs.maps import ExplainConfig, ShareConfig
from saliency.configs.model import EvaluateConfig, NullConfig
from saliency.data.manifest import relative_path, write_manifest
from saliency.distributed import World, barrier, broadcast
from saliency.rundir import last_checkpoint, null_dir, null_dirs, record
from saliency.runs import Run
from saliency.stages import registry
from saliency.stages.contract import Result, StageContext

SHUFFLED = ("train", "val")
TRUE_LABEL = "label_before_shuffle"


@dataclass
class NullResult:
    out: Path
    changed: float  # fraction of train and val labels the permutation changed
    train_log: list[dict]
    learned: bool  # the null's validation accuracy left chance (it should not)
    test_accuracy: dict = field(default_factory=dict)  # the null's, with its interval
    explained: dict[str, list[str]] = field(default_factory=dict)  # split -> methods
    epochs: int = 0
    recipe_epochs: int = 0
    stopped: str = ""  # why its training stopped
    seed: int = 0  # of its label permutation


def null_manifest(run: Path, seed: int, out: Path | None = None) -> tuple[Path, dict]:
    """Write ``OUT/manifest.csv`` (``RUN/null/`` by default; module docstring), labels
    permuted by ``seed``; returns its path and a record."""
    from saliency.models.evaluate import evaluation_rows

    # splits resolved, absolute image paths
    rows, manifest = evaluation_rows(Run(run).checkpoint(), "all", run=run)
    out = out or null_dir(run)
    df = rows.copy()
    df["path"] = [relative_path(p, out) for p in df["path"]]
    if "mask" in df.columns:
        root = Path(manifest).resolve().parent
        df["mask"] = [relative_path(root / m, out) if m else "" for m in df["mask"].fillna("")]
    rng = np.random.default_rng(seed)
    labels = df["label"].to_numpy(dtype=object).copy()
    df[TRUE_LABEL] = labels.copy()
    for split in SHUFFLED:
        idx = np.flatnonzero(df["split"].to_numpy() == split)
        labels[idx] = labels[rng.permutation(idx)]
    df["label"] = labels
    used = df["split"].isin(SHUFFLED).to_numpy()
    changed = float((labels[used] != df[TRUE_LABEL].to_numpy()[used]).mean()) if used.any() else 0
    path = write_manifest(df, out / "manifest.csv")
    info = {"seed": seed, "source_manifest": str(manifest), "changed": changed,
            "shuffled_splits": list(SHUFFLED), "n_shuffled": int(used.sum())}  # fmt: skip
    atomic_write_json(out / "null.json", info)
    return path, info


def train_null(
    cfg: NullConfig,
    on_epoch: Callable | None = None,
    step: Callable[[int], None] | None = None,
    world: World | None = None,
    out: Path | None = None,
    seed: int | None = None,
):
    """Train (or continue) the null in ``out`` (``RUN/null/``) by the run's recipe on the
    manifest shuffled by ``seed`` (``cfg.seed``); returns the trainer after fitting. Under
    torchrun (``world``) every rank trains (DDP); rank 0 writes the manifest and records."""
    from saliency.models.train import Trainer, config_from_checkpoint

    run = Run(cfg.run).require()
    if run.adopted:
        raise ValueError(
            f"{run} holds an adopted model: a null model is trained by the recipe that trained "
            "the run's model, and saliency does not have it; `saliency validate` still runs "
            "the randomization and perturbation checks"
        )
    if not run.has_recipe():
        raise ValueError(
            f"{run} has no training recipe (checkpoints/last.pt): a null model is trained by "
            "the recipe that trained the run's model; train the run with `saliency train`"
        )
    world = world or World()
    out = out or null_dir(run.path)
    if world.main:
        null_manifest(run.path, cfg.seed if seed is None else seed, out)
    barrier()
    manifest = out / "manifest.csv"
    recipe = config_from_checkpoint(run.path, manifest=str(manifest), out=str(out))
    recipe = replace(recipe, device=cfg.device, workers=cfg.workers)
    if cfg.epochs is not None:
        recipe = replace(recipe, epochs=cfg.epochs)
    resume = last_checkpoint(out).is_file()
    if resume:  # the stored recipe decides, except a changed epoch count
        stored = config_from_checkpoint(out, device=cfg.device, workers=cfg.workers)
        recipe = replace(stored, epochs=recipe.epochs)
    # shuffled labels leave nothing to learn: stop on validation loss alone, not after
    # every epoch of the recipe as a model still at chance would (models.train)
    trainer = Trainer(recipe, resume=resume, world=world, wait_for_learning=False)
    if world.main:
        record(out, "train", recipe.to_dict())
    trainer.fit(on_epoch=on_epoch, step=step)
    return trainer


def explain_null(
    cfg: NullConfig,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    world: World | None = None,
    out: Path | None = None,
) -> dict[str, list[str]]:
    """Explain the null model in ``out`` (``RUN/null/``) on every split and method the run
    explained, with the run's settings and the run's targets; ``progress(split, n)``
    returns a counter."""
    run, out, world = Run(cfg.run), out or null_dir(cfg.run), world or World()
    done = {}
    ctx = StageContext(run=out, device=cfg.device, workers=cfg.workers, overwrite=True,
                       rank=world.rank, world_size=world.size)  # fmt: skip
    if progress is not None:
        ctx.progress = progress
    for split, (ecfg, methods) in run.recorded_configs(ExplainConfig).items():
        registry.get("explain").run_in(run.same_images(split, ecfg, methods), ctx)
        done[split] = methods
    return done


def analyse_null(
    cfg: NullConfig,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    world: World | None = None,
    out: Path | None = None,
) -> tuple[dict | None, dict[str, list[str]]]:
    """Evaluate the null model in ``out`` (``RUN/null/``), explain it like the run and
    measure its per-image shares; returns its test accuracy (``None`` on ranks other than 0
    under torchrun, where each step is sharded) and the explained methods per split."""
    out, world = out or null_dir(cfg.run), world or World()
    ctx = StageContext(run=out, device=cfg.device, workers=cfg.workers, rank=world.rank,
                       world_size=world.size)  # fmt: skip
    ev = registry.get("evaluate").run_in(EvaluateConfig(run=out), ctx).value.get("test")
    explained = explain_null(cfg, progress, world, out)
    masks = ev is not None and "mask" in pd.read_csv(ev.metrics["manifest"], nrows=1).columns
    if broadcast(masks):  # rank 0's answer, on every rank
        for split in explained:  # per-image shares, for the lift (no selections needed)
            scfg = ShareConfig(run=out, outcomes=["all"], groups=["all"], maps_split=split,
                               bootstrap=200)  # fmt: skip
            registry.get("share").run_in(scfg, ctx)
    return (ev.metrics["accuracy"]["all"] if ev else None), explained


def run(
    cfg: NullConfig,
    on_epoch: Callable | None = None,
    step: Callable[[int], None] | None = None,
    progress: Callable[[str, int], Callable[[int], None]] | None = None,
    world: World | None = None,
) -> list[NullResult] | None:
    """Train, evaluate and explain the ``cfg.seeds`` null models, one per permutation seed
    (module docstring); under torchrun every step is spread over the ranks and rank 0
    records (``None`` on the others)."""
    from saliency.models.train import config_from_checkpoint

    world = world or World()
    results, recipe_epochs = [], None
    for k, out in enumerate(null_dirs(cfg.run, cfg.seed, cfg.seeds)):
        trainer = train_null(cfg, on_epoch, step, world, out, cfg.seed + k)  # checks the run
        if recipe_epochs is None:  # the run's recipe (read once the run is known to have one)
            recipe_epochs = config_from_checkpoint(cfg.run).epochs
        acc, explained = analyse_null(cfg, progress, world, out)
        if world.main:
            info = json.loads((out / "null.json").read_text())
            results.append(NullResult(out, info["changed"], trainer.log, trainer.learned, acc,
                                      explained, trainer.cfg.epochs, recipe_epochs,
                                      trainer.stop_reason, cfg.seed + k))  # fmt: skip
    if not world.main:
        return None
    stopped = [r.stopped for r in results]
    record(cfg.run, "null", cfg.to_dict() | {"stopped": stopped[0] if cfg.seeds == 1 else stopped})
    return results


def _why(stopped: str) -> str:
    """`` (early stopping after epoch 3: ...)``; nothing when it ran all its epochs."""
    return f" ({stopped})" if stopped and not stopped.startswith("all ") else ""


def lines(results: list[NullResult], seconds: float) -> list[str]:
    """What the command prints: per null, the shuffle, the training, its accuracy and
    warnings; the folder(s)."""
    out = []
    many = len(results) > 1
    for res in results:
        a = res.test_accuracy
        who = f"null model (seed {res.seed})" if many else "null model"
        out.append(
            f"{who}: {res.changed:.0%} of train/val labels changed by the shuffle; "
            f"{len(res.train_log)} epochs{_why(res.stopped)}; test accuracy {a['value']:.1%} "
            f"[{a['ci'][0]:.1%}, {a['ci'][1]:.1%}] on true labels"
        )
        if res.epochs != res.recipe_epochs:
            out.append(f"note: the null trained at most {res.epochs} epochs, the recipe "
                       f"{res.recipe_epochs}")  # fmt: skip
        if res.learned:
            out.append(
                "warning: the null's validation accuracy left chance; shuffled labels should "
                "leave nothing to learn (check for duplicate images across splits)"
            )
        if not many or res is results[0]:
            out += [f"explained {split}: {', '.join(methods)}"
                    for split, methods in res.explained.items()]  # fmt: skip
    if many:
        out.append(f"{len(results)} nulls: verdicts judge the lift against their average and "
                   "spread")  # fmt: skip
    where = results[0].out if not many else f"{results[0].out} and {results[1].out.parent}/"
    return out + [f"in {seconds:.0f} s -> {where}"]


def run_stage(cfg: NullConfig, ctx: StageContext) -> Result:
    """The stage contract: train, evaluate and explain the null model of the context's run
    (``ctx.on_epoch`` hears its epochs)."""
    import time

    start = time.perf_counter()
    cfg = ctx.fill(cfg)
    res = run(cfg, on_epoch=ctx.on_epoch, step=ctx.progress("null train", 0),
              progress=ctx.progress, world=ctx.world())  # fmt: skip
    return Result(res, lines(res, time.perf_counter() - start) if res is not None else [])
