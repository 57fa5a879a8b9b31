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
- ``curves.csv`` (mean curves) and ``curves_summary.csv``: deletion and insertion;
- ``validation.json``: the settings and what was not possible (and which command makes it).

Missing delete-mode ablations of the run (and of the null) are made here with the run's
fill, so one command gives every verdict. The floor's maps are stored under
``RUN/validation/floor/`` like a run's, so a second call reuses them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from saliency.analysis import validation as tables
from saliency.analysis.recovered import NO_NULL, judged
from saliency.analysis.share.table import share_table
from saliency.analysis.similarity import randomization_verdicts
from saliency.atomic import atomic_write_json, atomic_write_text
from saliency.configs.checks import AblationConfig, ValidateConfig
from saliency.configs.maps import ExplainConfig
from saliency.data.regions import REGIONS
from saliency.methods.base import MEAN_FACE
from saliency.methods.registry import REGISTRY, method_settings
from saliency.methods.store import absolute_paths, explained_methods, read_maps
from saliency.models.checkpoint import Checkpoint, load_model, save_checkpoint
from saliency.models.loader import ImageSource
from saliency.models.preprocess import to_unit
from saliency.models.randomize import reinitialized
from saliency.rundir import best_checkpoint, null_dir, record, saliency_dir, validation_dir
from saliency.runs import Run, ground_truth, mean_face
from saliency.runtime import full_float32, resolve_device
from saliency.stages import registry
from saliency.stages.contract import Result, StageContext
from saliency.stages.validate import passes


@dataclass
class ValidateResult:
    out: Path
    verdicts: pd.DataFrame
    lift: pd.DataFrame
    truth: pd.DataFrame
    randomization: pd.DataFrame  # per method: passed, last step's similarities
    curves: pd.DataFrame
    notes: list[str] = field(default_factory=list)


def _shares(folder: Path, workers: int) -> pd.DataFrame:
    per, _, meta = share_table(folder, workers=workers)
    per["image"] = absolute_paths(per, meta)
    return per


def _floor(run: Path, cfg: ValidateConfig, model, ckpt: Checkpoint, device, methods) -> Path:
    """Explain the re-initialized copy of ``model`` (``RUN/validation/floor``) like the run."""
    floor = validation_dir(run) / "floor"
    if not best_checkpoint(floor).is_file():
        state = {k: v.cpu() for k, v in reinitialized(model, cfg.seed).state_dict().items()}
        save_checkpoint(best_checkpoint(floor), replace(ckpt, state_dict=state, floor=True))
    ecfg, _ = Run(run).recorded_configs(ExplainConfig)[cfg.split]
    same = Run(run).same_images(cfg.split, ecfg, methods)
    registry.get("explain").run(same, StageContext(run=floor, device=str(device),
                                                   workers=cfg.workers))  # fmt: skip
    return floor


def _ablations(run: Path, fill: str, cfg: ValidateConfig) -> pd.DataFrame | None:
    drops = Run(run).ablation_drops(fill)
    if drops is None or any(f"drop_{r}" not in drops.columns for r in REGIONS):
        # none, or only some regions (an `ablate --region eyes` before): all six in one pass
        ecfg, _ = Run(run).recorded_configs(ExplainConfig)[cfg.split]
        acfg = AblationConfig(split=cfg.split, fill=fill, manifest=ecfg.manifest)
        ctx = StageContext(run=run, device=cfg.device, workers=cfg.workers)
        registry.get("ablate").run(acfg, ctx)
        drops = Run(run).ablation_drops(fill)
    return drops


def _subset(run: Path, split: str, method: str, n: int, pre):
    """The first ``n`` explained images ``uint8 [n, S, S, 3]`` and their targets ``[n]``."""
    _, index, meta = read_maps(saliency_dir(run, split, method))
    n = min(n, len(index))
    paths = absolute_paths(index.head(n), meta)
    source = ImageSource(paths, pre, cache_bytes=0, workers=0)
    images = torch.cat([b for b, _ in source.batches(np.arange(n), 64)]) if n else None
    classes = meta["classes"]
    target = torch.tensor([classes.index(t) for t in index["target"].head(n)])
    return images, target


def _region_verdicts(run, cfg, methods, classes, planted, fill, floor, has_null, notes):
    """Per method: the verdict row, lift rows (over the null and the floor) and truth rows."""
    from saliency.analysis.selection import Selection
    from saliency.analysis.share.summary import summarize_shares

    regions, b, seed = list(REGIONS), cfg.bootstrap, cfg.seed
    drop = tables.drop_evidence(_ablations(run, fill, cfg), regions, b, seed)
    null = null_dir(run)
    null_drop = None  # the null's own ablation, for its verdict (data randomization)
    if has_null and floor is not None:
        null_drop = tables.drop_evidence(_ablations(null, fill, cfg), regions, b, seed)
    elif has_null:  # the null's verdict is its lift over the floor: none without one
        notes.append("no verdict of the null itself without the floor (--no-floor): its "
                     "lift is measured over the floor's maps")  # fmt: skip
    verdicts, lifts, truth = [], [], []
    for m in methods:
        meta = read_maps(saliency_dir(run, cfg.split, m))[2]
        per = _shares(saliency_dir(run, cfg.split, m), cfg.workers)
        null_per = Run(run).null_shares(m, cfg.split) if has_null else None  # `saliency null`
        lifted = None
        if null_per is not None:
            lifted, n = tables.paired_lift(per, null_per, regions, b, seed)
            lifts += tables.lift_rows(m, "null", regions, lifted, n) if lifted else []
        row = tables.method_verdict(m, regions, drop, per, lifted, judged(meta), planted, b, seed)
        if floor is not None:
            floor_per = _shares(saliency_dir(floor, cfg.split, m), cfg.workers)
            fl, n = tables.paired_lift(per, floor_per, regions, b, seed)
            if fl is not None:
                lifts += tables.lift_rows(m, "floor", regions, fl, n)
            else:
                notes.append(f"{m}: the floor's maps pair with {n} image(s) that have "
                             "positive attribution; no lift over the floor")  # fmt: skip
            if null_per is not None and null_drop is not None:
                nl, _ = tables.paired_lift(null_per, floor_per, regions, b, seed)
                nrow = tables.method_verdict(m, regions, null_drop, null_per, nl, judged(meta),
                                             None, b, seed)  # fmt: skip
                row["null_recovered"] = nrow["recovered"]
                row["null_ablation_leader"] = nrow["ablation_leader"]
        verdicts.append(row)
        if planted and "rank_accuracy" in per.columns:
            t = summarize_shares(per, classes, [Selection()], planted, b, seed)
            truth += [{"method": m, **r} for r in t.truth.to_dict("records")]
    return verdicts, lifts, truth


@full_float32
def validate_run(cfg: ValidateConfig, progress: Callable[[str, int], Callable] | None = None):
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
    null = null_dir(run)
    has_null = all((saliency_dir(null, cfg.split, m) / "meta.json").is_file() for m in methods)
    if not has_null and ckpt.adopted:
        notes.append(
            "no verdict without a null model, and an adopted model has none (no training "
            "recipe to retrain it with shuffled labels); randomization and curves still apply"
        )
    elif not has_null:
        notes.append(NO_NULL.format(run=cfg.run))
    verdicts, lifts, truth = [], [], []
    if has_masks:
        floor = _floor(run, cfg, model, ckpt, device, methods) if cfg.floor else None
        verdicts, lifts, truth = _region_verdicts(
            run, cfg, methods, classes, planted, fill, floor, has_null, notes
        )
    else:
        notes.append(f"{manifest} has no 'mask' column: no verdicts (run `saliency regions` on it)")
    n = max(cfg.randomization_images, cfg.curve_images)
    images, target = _subset(run, cfg.split, methods[0], n, pre)  # read once, for both passes
    k = min(cfg.randomization_images, len(target))
    ecfg, _ = reader.recorded_configs(ExplainConfig, notes.append)[cfg.split]
    own = method_settings(*(getattr(ecfg, f.name) for f in fields(ecfg)))  # as explained
    wanted = {d for m in methods for d in REGISTRY[m].run_data(own.get(m, REGISTRY[m].defaults()))}
    face = mean_face(ckpt, pre, device, cfg.workers) if MEAN_FACE in wanted else None
    fns = {m: passes.method_maps(m, pre, own, face, ecfg.upsample) for m in methods}
    unit = to_unit(images[:k]).to(device)
    step = progress("randomization", 0) if progress is not None else None
    per_image = passes.cascade(model, unit, target[:k], fns, cfg.seed, step)
    steps = tables.summarize_steps(per_image, cfg.bootstrap, cfg.seed)
    rand = randomization_verdicts(steps, cfg.threshold)
    n = min(cfg.curve_images, len(target))
    images, target = images[:n], target[:n]
    maps = {m: np.asarray(read_maps(saliency_dir(run, cfg.split, m))[0][:n]) for m in methods}
    step = progress("curves", len(methods) + 1) if progress is not None else None
    curve, areas = passes.perturbation_curves(
        model, images, pre, target, maps, cfg.curve_steps, fill, cfg.seed, step
    )
    summary = tables.curve_summary(areas, cfg.bootstrap, cfg.seed)
    frac = np.linspace(0, 1, cfg.curve_steps + 1)
    mean_curves = pd.DataFrame([
        {"method": m, "curve": kind, "fraction": f, "probability": v}
        for m, (d, i) in curve.items() for kind, c in (("deletion", d), ("insertion", i))
        for f, v in zip(frac, c.mean(0), strict=True)
    ])  # fmt: skip
    res = ValidateResult(out, pd.DataFrame(verdicts), pd.DataFrame(lifts), pd.DataFrame(truth),
                         rand, summary, notes)  # fmt: skip
    if len(res.verdicts):
        res.verdicts = res.verdicts.merge(
            rand[["method", "passed"]].rename(columns={"passed": "randomization_passed"}),
            on="method", how="left",
        ).merge(
            summary[["method", "passed"]].rename(columns={"passed": "curves_passed"}),
            on="method", how="left",
        )  # fmt: skip
    _write(out, res, per_image, steps, mean_curves, cfg, fill, planted)
    return res


def _write(out, res, per_image, steps, mean_curves, cfg, fill, planted) -> None:
    out.mkdir(parents=True, exist_ok=True)
    named = {
        "verdicts": res.verdicts, "lift": res.lift, "truth": res.truth,
        "randomization": per_image, "randomization_steps": steps,
        "randomization_verdicts": res.randomization, "curves": mean_curves,
        "curves_summary": res.curves,
    }  # fmt: skip
    for name, t in named.items():
        atomic_write_text(out / f"{name}.csv", t.to_csv(index=False, float_format="%.6g"))
    info = {"settings": cfg.to_dict(), "fill": fill, "planted": planted, "notes": res.notes}
    atomic_write_json(out / "validation.json", info)


def run(cfg: ValidateConfig, progress=None) -> ValidateResult:
    """The validate stage (module docstring), recorded in the run."""
    res = validate_run(cfg, progress)
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
    res = run(ctx.fill(cfg), ctx.progress)
    return Result(res, lines(res, time.perf_counter() - start))
