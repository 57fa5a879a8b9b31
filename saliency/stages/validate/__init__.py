"""The validate stage: are a run's explanations right?

Writes ``RUN/validation/``:

- ``verdicts.csv``: per method, the verdict of :mod:`saliency.analysis.recovered` (the
  ablation leader and the leader of the lift over the null model; none without a null),
  the earlier enrichment definition's verdict beside it, the planted region when the data
  have a ground truth (``synth.json``), and the null model's own verdict (data
  randomization: it should recover nothing);
- ``lift.csv``: lambda per method and region over the null and over the re-initialized
  floor (reported; used only for the null's own verdict), with intervals; ``truth.csv``:
  relevance rank accuracy and mass accuracy in the planted region against their chance
  levels;
- ``randomization.csv`` (per image), ``randomization_steps.csv`` and
  ``randomization_verdicts.csv``: the cascading model-parameter randomization;
- ``curves.csv`` (mean curves), ``curves_summary.csv`` and ``curves_per_image.csv``:
  deletion and insertion;
- ``cells.csv``: per method and measure (deletion and insertion areas, the randomization's
  similarities with every block re-initialized), the mean over all images and per cell,
  and each cell against the rest with simultaneous intervals over the cells
  (:mod:`saliency.analysis.cells_validation`); the images are taken from the cells in turn;
- ``validation.json``: the settings and what was not possible (and which command makes it).

Missing delete-mode ablations of the run (and of the null) are made here with the run's
fill, so one command gives every verdict. The floor's maps are stored under
``RUN/validation/floor/`` like a run's, so a second call reuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path

import numpy as np
import pandas as pd

from saliency.analysis import validation as tables
from saliency.analysis.cells_validation import validation_by_cell
from saliency.analysis.recovered import NO_NULL, judged
from saliency.analysis.similarity import randomization_verdicts
from saliency.atomic import atomic_write_json, atomic_write_text
from saliency.configs.checks import ValidateConfig
from saliency.configs.maps import ExplainConfig
from saliency.data.regions import REGIONS
from saliency.distributed import World
from saliency.methods.base import MEAN_FACE
from saliency.methods.registry import REGISTRY, method_settings
from saliency.methods.store import explained_methods, read_maps
from saliency.models.checkpoint import load_model
from saliency.models.preprocess import to_unit
from saliency.rundir import best_checkpoint, null_dirs, record, saliency_dir, validation_dir
from saliency.runs import Run, ground_truth, mean_face
from saliency.runtime import full_float32, resolve_device
from saliency.stages.contract import Result, StageContext
from saliency.stages.validate import inputs, passes


@dataclass
class ValidateResult:
    out: Path
    verdicts: pd.DataFrame
    lift: pd.DataFrame
    truth: pd.DataFrame
    randomization: pd.DataFrame  # per method: passed, last step's similarities
    curves: pd.DataFrame
    notes: list[str] = field(default_factory=list)
    cells: pd.DataFrame = field(default_factory=pd.DataFrame)  # per cell, cell vs rest


def _region_verdicts(run, cfg, methods, classes, planted, fill, floor, nulls, notes, world):
    """Per method: the verdict row, lift rows (over the nulls and the floor) and truth rows;
    ``nulls``: the folders of the null models with maps of every method."""
    from saliency.analysis.selection import Selection
    from saliency.analysis.share.summary import summarize_shares

    regions, b, seed = list(REGIONS), cfg.bootstrap, cfg.seed
    drop = tables.drop_evidence(inputs.ablations(run, fill, cfg, world), regions, b, seed)
    parts = validation_dir(run)  # where the ranks' shares of the shares meet
    null_drops = []  # the nulls' own ablations, for their verdict (data randomization)
    if nulls and floor is not None:
        null_drops = [inputs.null_ablations(null, fill, cfg, world) for null in nulls]
    elif nulls:  # the null's verdict is its lift over the floor: none without one
        notes.append("no verdict of the null itself without the floor (--no-floor): its "
                     "lift is measured over the floor's maps")  # fmt: skip
    verdicts, lifts, truth = [], [], []
    for m in methods:
        meta = read_maps(saliency_dir(run, cfg.split, m))[2]
        per = inputs.shares(saliency_dir(run, cfg.split, m), cfg.workers, world, parts)
        null_per = Run(run).null_shares(m, cfg.split) if nulls else []  # `saliency null`
        lifted = None
        if null_per:
            lifted, n = tables.paired_lift(per, null_per, regions, b, seed)
            lifts += tables.lift_rows(m, "null", regions, lifted, n) if lifted else []
        row = tables.method_verdict(m, regions, drop, per, lifted, judged(meta), planted, b, seed)
        row["nulls"] = len(null_per)
        if floor is not None:
            floor_per = inputs.shares(saliency_dir(floor, cfg.split, m), cfg.workers, world, parts)
            fl, n = tables.paired_lift(per, floor_per, regions, b, seed)
            if fl is not None:
                lifts += tables.lift_rows(m, "floor", regions, fl, n)
            else:
                notes.append(f"{m}: the floor's maps pair with {n} image(s) that have "
                             "positive attribution; no lift over the floor")  # fmt: skip
            if null_per and null_drops:
                nrow, each = tables.null_verdict(m, regions, null_drops, null_per, floor_per,
                                                 judged(meta), b, seed)  # fmt: skip
                row = tables.withhold(row, nrow["recovered"])  # the null must be silent
                row["null_ablation_leader"] = nrow["ablation_leader"]
                if each:
                    row["null_each"] = ";".join(each)
        verdicts.append(row)
        if planted and "rank_accuracy" in per.columns:
            t = summarize_shares(per, classes, [Selection()], planted, b, seed)
            truth += [{"method": m, **r} for r in t.truth.to_dict("records")]
    return verdicts, lifts, truth


@full_float32
def validate_run(
    cfg: ValidateConfig,
    progress: Callable[[str, int], Callable] | None = None,
    world: World | None = None,
) -> ValidateResult | None:
    """The checks (module docstring). Under torchrun (``world``) every rank takes part: the
    floor's explain, the ablations and the shares are sharded stages, the randomization
    cascade and the curves share their images; rank 0 writes (``None`` on the others)."""
    world = world or World()
    reader = Run(cfg.run).require()
    run = reader.path
    device = resolve_device(cfg.device)
    out = validation_dir(run)
    notes: list[str] = []
    methods = explained_methods(run, cfg.split, cfg.methods)
    model, pre, classes, ckpt = load_model(best_checkpoint(run), device)
    for p in model.parameters():
        p.requires_grad_(False)
    first_meta = read_maps(saliency_dir(run, cfg.split, methods[0]))[2]
    manifest = Path(first_meta["manifest"])
    planted = ground_truth(manifest)
    fill = cfg.fill or next(iter(reader.ablation_fills()), "blur")
    masks = first_meta.get("mask_manifest")  # masks made after the model (explain --manifest)
    has_masks = "mask" in pd.read_csv(masks or manifest, nrows=1).columns
    listed = null_dirs(run)
    nulls = [n for n in listed if all((saliency_dir(n, cfg.split, m) / "meta.json").is_file()
                                      for m in methods)]  # fmt: skip
    has_null = bool(nulls)
    if has_null and len(nulls) < len(listed):
        notes.append(f"{len(nulls)} of the {len(listed)} null models have maps of every "
                     f"method (`saliency null --run {cfg.run} --seeds {len(listed)}` finishes "
                     "them)")  # fmt: skip
    if not has_null and ckpt.adopted:
        notes.append(
            "no verdict without a null model, and an adopted model has none (no training "
            "recipe to retrain it with shuffled labels); randomization and curves still apply"
        )
    elif not has_null:
        notes.append(NO_NULL.format(run=cfg.run))
    verdicts, lifts, truth = [], [], []
    if has_masks:
        floor = (
            inputs.floor_maps(run, cfg, model, ckpt, device, methods, world) if cfg.floor else None
        )
        verdicts, lifts, truth = _region_verdicts(
            run, cfg, methods, classes, planted, fill, floor, nulls, notes, world
        )
    else:
        notes.append(f"{manifest} has no 'mask' column: no verdicts (run `saliency regions` on it)")
    n = max(cfg.randomization_images, cfg.curve_images)
    # read once, for both passes; the cells in turn
    images, target, positions, cells = inputs.subset(run, cfg.split, methods[0], n, pre)
    k = min(cfg.randomization_images, len(target))
    ecfg, _ = reader.recorded_configs(ExplainConfig, notes.append)[cfg.split]
    own = method_settings(*(getattr(ecfg, f.name) for f in fields(ecfg)))  # as explained
    wanted = {d for m in methods for d in REGISTRY[m].run_data(own.get(m, REGISTRY[m].defaults()))}
    face = mean_face(ckpt, pre, device, cfg.workers, run) if MEAN_FACE in wanted else None
    fns = {m: passes.method_maps(m, pre, own, face, ecfg.upsample) for m in methods}
    unit = to_unit(images[:k]).to(device)
    step = progress("randomization", 0) if progress is not None else None
    per_image = passes.spread_cascade(model, unit, target[:k], fns, cfg.seed, step, world)
    steps = tables.summarize_steps(per_image, cfg.bootstrap, cfg.seed)
    rand = randomization_verdicts(steps, cfg.threshold)
    n = min(cfg.curve_images, len(target))
    images, target = images[:n], target[:n]
    at = positions[:n]
    maps = {m: np.asarray(read_maps(saliency_dir(run, cfg.split, m))[0][at]) for m in methods}
    step = progress("curves", len(methods) + 1) if progress is not None else None
    curve, areas = passes.spread_curves(
        model, images, pre, target, maps, cfg.curve_steps, fill, cfg.seed, step, world
    )
    if not world.main:
        return None
    summary = tables.curve_summary(areas, cfg.bootstrap, cfg.seed)
    per_image = per_image.assign(cell=[cells[i] for i in per_image["image"]])
    by_cell, curve_images = validation_by_cell(per_image, areas, cells, positions, cfg.bootstrap,
                                               cfg.seed)  # fmt: skip
    frac = np.linspace(0, 1, cfg.curve_steps + 1)
    mean_curves = pd.DataFrame([
        {"method": m, "curve": kind, "fraction": f, "probability": v}
        for m, (d, i) in curve.items() for kind, c in (("deletion", d), ("insertion", i))
        for f, v in zip(frac, c.mean(0), strict=True)
    ])  # fmt: skip
    res = ValidateResult(out, pd.DataFrame(verdicts), pd.DataFrame(lifts), pd.DataFrame(truth),
                         rand, summary, notes, by_cell)  # fmt: skip
    if len(res.verdicts):
        res.verdicts = res.verdicts.merge(
            rand[["method", "passed"]].rename(columns={"passed": "randomization_passed"}),
            on="method", how="left",
        ).merge(
            summary[["method", "passed"]].rename(columns={"passed": "curves_passed"}),
            on="method", how="left",
        )  # fmt: skip
    _write(out, res, per_image, steps, mean_curves, curve_images, cfg, fill, planted)
    return res


def _write(out, res, per_image, steps, mean_curves, curve_images, cfg, fill, planted) -> None:
    out.mkdir(parents=True, exist_ok=True)
    named = {
        "verdicts": res.verdicts, "lift": res.lift, "truth": res.truth,
        "randomization": per_image, "randomization_steps": steps,
        "randomization_verdicts": res.randomization, "curves": mean_curves,
        "curves_summary": res.curves, "curves_per_image": curve_images, "cells": res.cells,
    }  # fmt: skip
    for name, t in named.items():
        atomic_write_text(out / f"{name}.csv", t.to_csv(index=False, float_format="%.6g"))
    info = {"settings": cfg.to_dict(), "fill": fill, "planted": planted, "notes": res.notes}
    atomic_write_json(out / "validation.json", info)


def run(cfg: ValidateConfig, progress=None, world: World | None = None) -> ValidateResult | None:
    """The validate stage (module docstring), recorded in the run (rank 0 under torchrun;
    ``None`` on the other ranks)."""
    res = validate_run(cfg, progress, world)
    if res is not None:
        record(cfg.run, "validate", cfg.to_dict())
    return res


def _yes(v) -> str:
    return "-" if v is None or v != v else ("yes" if v else "no")


def verdict_lines(verdicts: pd.DataFrame, randomization: pd.DataFrame | None) -> list[str]:
    """The verdict table and the randomization checks (``validation/*.csv`` frames), as text."""
    out = []
    if len(verdicts):
        out.append("verdicts (recovered = ablation leader and lift leader over the null agree):")
        for r in verdicts.to_dict("records"):
            planted = f", planted {r['planted']}" if r["planted"] else ""
            got = r["recovered"] or ("none" if r["verdict"] == "judged" else f"- ({r['verdict']})")
            line = (
                f"  {r['method']:8s} recovered {got}{planted}; ablation "
                f"{r['ablation_leader'] or '-'}, lift {r['lift_leader'] or '-'}; old definition: "
                f"{r['recovered_old'] or 'none'}"
            )
            if "null_recovered" in r:
                line += f"; null recovers {r['null_recovered'] or 'nothing'}"
            if r.get("withheld"):
                line += f" -> {r['withheld']} withheld"
            out.append(line)
    for r in [] if randomization is None else randomization.to_dict("records"):
        out.append(
            f"  randomization {r['method']:8s} {'passed' if r['passed'] else 'FAILED'}: with "
            f"{r['blocks']} blocks re-initialized, Spearman {r['spearman']:.2f}, of |maps| "
            f"{r['spearman_abs']:.2f}, SSIM {r['ssim']:.2f} (threshold {r['threshold']})"
        )
    return out


def lines(res: ValidateResult, seconds: float | None = None) -> list[str]:
    """What the command prints: notes, verdicts, randomization, curves, the folder."""
    out = list(res.notes) + verdict_lines(res.verdicts, res.randomization)
    for r in res.curves.to_dict("records"):
        if r["method"] == "random":
            continue
        out.append(
            f"  curves {r['method']:8s} deletion AUC {r['deletion_auc']:.3f} "
            f"({r['deletion_vs_random']:+.3f} vs random), insertion AUC "
            f"{r['insertion_auc']:.3f} ({r['insertion_vs_random']:+.3f}): {_yes(r['passed'])}"
        )
    took = f" in {seconds:.0f} s" if seconds is not None else ""
    return out + [f"{took.strip() or 'done'} -> {res.out}"]


def run_stage(cfg: ValidateConfig, ctx: StageContext) -> Result:
    """The stage contract: validate the context's run."""
    import time

    start = time.perf_counter()
    res = run(ctx.fill(cfg), ctx.progress, ctx.world())
    return Result(res, lines(res, time.perf_counter() - start) if res is not None else [])
